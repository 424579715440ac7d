"""Issue 25 study (docs/results.md "A per-image change gate"): the 13-statistic logistic gate against the
same gate on hand-made non-linear functions of those statistics (absolute and normed foreground -
background colour differences, the change along that difference, the change in that distance, the
share of the change that cancels out) and on their quadratic expansion; fit on the fit set, scored on
the tuning split per threshold. Input: the .npz files of features.py (columns 328-340 are the 13
statistics). Usage: .venv-ref/bin/python Scripts/gate_study/nonlinear.py TRAIN.npz TUNE.npz
"""
import numpy as np, torch, itertools, sys
tr = np.load(sys.argv[1]); te = np.load(sys.argv[2])
base=list(range(328,341))
def expand(F, kind):
    X=F[:,base].astype(np.float64)
    d=X[:,0:3]; ad=X[:,3:6]; cf=X[:,6:9]; cb=X[:,9:12]; m=X[:,12:13]
    cols=[X]
    if kind in ('nl','quad'):
        diff=cf-cb
        cols += [np.abs(diff), np.linalg.norm(diff,axis=1,keepdims=True), np.linalg.norm(d,axis=1,keepdims=True),
                 (d*(-diff)).sum(1,keepdims=True)/(np.linalg.norm(diff,axis=1,keepdims=True)+1e-3),
                 np.linalg.norm(cf+d-cb,axis=1,keepdims=True)-np.linalg.norm(diff,axis=1,keepdims=True),
                 ad.sum(1,keepdims=True)/(np.abs(d).sum(1,keepdims=True)+1e-3)]
    if kind=='quad':
        cols += [X[:,i:i+1]*X[:,j:j+1] for i,j in itertools.combinations_with_replacement(range(13),2)]
    return np.concatenate(cols,1)
def run(kind, wd, taus=np.arange(0.05,0.7,0.05), floor=100):
    Xtr=torch.tensor(expand(tr['f'],kind)); mu,sd=Xtr.mean(0),Xtr.std(0)+1e-6
    Xtr=(Xtr-mu)/sd; Xte=(torch.tensor(expand(te['f'],kind))-mu)/sd
    A,B,C=torch.tensor(tr['abc']).double().T
    w=torch.zeros(Xtr.shape[1],dtype=torch.float64,requires_grad=True); b=torch.tensor(2.0,dtype=torch.float64,requires_grad=True)
    opt=torch.optim.Adam([w,b],lr=1e-2)
    for it in range(2000):
        g=torch.sigmoid(Xtr@w+b); loss=((A-2*g*B+g*g*C)/(A+floor)).mean()+wd*(w*w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        g=torch.sigmoid(Xte@w+b); A,B,C=torch.tensor(te['abc']).double().T
        rows=[]
        for tau in taus:
            gg=torch.where(g<tau,torch.zeros_like(g),g); res=A-2*gg*B+gg*gg*C; lo=A<300
            rows.append((tau,(res.mean()/A.mean()).item(),((res>A+1e-9).double().mean()*100).item(),(res[lo].mean()/A[lo].mean()).item()))
    ok=[r for r in rows if r[2]<=20]
    best=min(ok,key=lambda r:r[1]) if ok else None
    print(kind, wd, 'best<=20%%: tau %.2f fmse %.3f worse %.1f%% <300 %.2f'%best if best else 'none', '| all:', ' '.join('%.2f:%.3f/%.0f/%.2f'%r for r in rows[::2]))
for kind in ('lin','nl','quad'):
    for wd in (1e-3,1e-2):
        run(kind,wd)
