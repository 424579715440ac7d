"""Issue 25 study (docs/results.md "A per-image change gate"): per-image features of the PyTorch twin
running a model file (token mean G, E4 pooled inside and outside the mask, D0 pooled, the change and
colour statistics), and the sums A, B, C of ChangeGateSample, for the fit and tuning sets.
Usage: .venv-ref/bin/python Scripts/gate_study/features.py MODEL DATASET_ROOT SPLIT OUT.npz
"""
import sys, os, json, numpy as np, torch
sys.path.insert(0,'Scripts/reference')
import gknet
from safetensors import safe_open
from safetensors.torch import load_file
from PIL import Image
torch.set_num_threads(2)
model_path, root, split, out = sys.argv[1:5]
meta = safe_open(model_path,'pt').metadata()
cfg = gknet.GKNetConfig.from_json_dict(json.loads(meta['gknet.config']))
m = gknet.GKNet(cfg); sd = {k: v.float() for k,v in load_file(model_path).items()}
missing = m.load_state_dict(sd, strict=False); print(missing)
m.eval()
def load(p, mode='RGB'):
    im = Image.open(p).convert(mode)
    if im.size != (256,256): im = im.resize((256,256), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.float32)/255.0)
names = [l.strip() for l in open(os.path.join(root, os.path.basename(root)+'_'+split+'.txt')) if l.strip()]
feats=[]; abc=[]
with torch.no_grad():
  for i in range(0, len(names), 16):
    cs, ms, rs = [], [], []
    for n in names[i:i+16]:
        base = os.path.splitext(os.path.basename(n))[0]; parts = base.split('_')
        cs.append(load(os.path.join(root,'composite_images',os.path.basename(n))).permute(2,0,1))
        ms.append(load(os.path.join(root,'masks','_'.join(parts[:-1])+'.png'),'L')[None])
        rs.append(load(os.path.join(root,'real_images','_'.join(parts[:-2])+'.jpg')).permute(2,0,1))
    c, mk, r = torch.stack(cs), torch.stack(ms), torch.stack(rs)
    tr = {}
    out_img = m(c, mk, tr).clamp(0,1)
    d = (out_img - c)*255; t = (r - c)*255
    den = mk.sum((1,2,3)).clamp_min(100)*3
    A = (t*t).sum((1,2,3))/den; B=(t*d).sum((1,2,3))/den; C=(d*d).sum((1,2,3))/den
    def pool(x, w):
        w = torch.nn.functional.interpolate(w, size=x.shape[2:], mode='area')
        return (x*w).sum((2,3))/w.sum((2,3)).clamp_min(1e-6)
    f = [tr['G'].mean(1), pool(tr['E4'], mk), pool(tr['E4'], 1-mk), pool(tr['D0'], mk), pool(tr['prediction']-c, mk), pool((tr['prediction']-c).abs(), mk),
         pool(c, mk), pool(c, 1-mk), mk.mean((1,2,3))[:,None]]
    feats.append(torch.cat(f,1).numpy()); abc.append(torch.stack([A,B,C],1).numpy())
    print(i, flush=True)
np.savez(out, f=np.concatenate(feats), abc=np.concatenate(abc), names=np.array(names))
