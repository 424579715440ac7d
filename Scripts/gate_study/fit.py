"""Issue 25 study: fits a logistic gate on groups of the twin features of features.py (fit set:
HGComprisTrain, scored on HGComprisTune) and prints, per threshold, the fMSE ratio, the share made
worse and the < 300 band ratio. Usage: .venv-ref/bin/python Scripts/gate_study/fit.py TRAIN.npz TUNE.npz
"""
import sys
import numpy as np, torch
tr = np.load(sys.argv[1]); te = np.load(sys.argv[2])
# feature layout: G 64 | E4fg 128 | E4bg 128 | D0fg 8 | dfg 3 | |d|fg 3 | cfg 3 | cbg 3 | mask 1
groups = {'G':range(0,64),'E4fg':range(64,192),'E4bg':range(192,320),'D0':range(320,328),'chg':range(328,334),'col':range(334,340),'m':range(340,341)}
def sel(names): return [i for n in names for i in groups[n]]
def run(names, wd, rel_floor=100, taus=(0.3,0.4,0.5,0.6), seeds=(0,)):
    idx = sel(names)
    Xtr = torch.tensor(tr['f'][:,idx]); mu, sd = Xtr.mean(0), Xtr.std(0)+1e-6
    Xtr=((Xtr-mu)/sd).double(); Xte=((torch.tensor(te['f'][:,idx])-mu)/sd).double()
    Ytr=torch.tensor(tr['abc']).double(); Yte=torch.tensor(te['abc']).double()
    A,B,C = Ytr.T
    w = torch.zeros(len(idx),dtype=torch.float64,requires_grad=True); b=torch.tensor(2.0,dtype=torch.float64,requires_grad=True)
    opt = torch.optim.Adam([w,b], lr=1e-2)
    for it in range(1500):
        g = torch.sigmoid(Xtr@w+b)
        loss = ((A-2*g*B+g*g*C)/(A+rel_floor)).mean() + wd*(w*w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    out=[]
    with torch.no_grad():
        g = torch.sigmoid(Xte@w+b); A,B,C=Yte.T
        for tau in taus:
            gg = torch.where(g<tau, torch.zeros_like(g), g)
            res = A-2*gg*B+gg*gg*C
            lo = A<300
            out.append(f't{tau}: {(res.mean()/A.mean()).item():.3f} {((res>A+1e-9).double().mean()*100).item():4.1f}% {(res[lo].mean()/A[lo].mean()).item():.2f}')
    print(f"{'+'.join(names):28s} wd{wd:<6} fl{rel_floor:<5}", ' | '.join(out))
for names in (['G','E4fg','E4bg','D0','chg','col','m'], ['G','chg','col','m'], ['G'], ['E4fg','E4bg'], ['chg','col','m'], ['G','D0','chg']):
    for wd in (1e-4, 1e-3):
        run(names, wd)
run(['G','E4fg','E4bg','D0','chg','col','m'], 1e-3, rel_floor=300)
run(['G','E4fg','E4bg','D0','chg','col','m'], 1e-3, rel_floor=30)
