"""Issue 25 study: a weight-space blend of two networks trained from the same initialization (same
seed, data order and recipe; different losses): every tensor, batch-norm running statistics
included, becomes alpha * P + (1 - alpha) * R. The result is a checkpoint `gknet export` and
`gknet calibrate` take like any other (P's metadata).
Usage: .venv-ref/bin/python Scripts/gate_study/soup.py P.safetensors R.safetensors ALPHA OUT.safetensors
"""
import sys
from safetensors import safe_open
from safetensors.numpy import save_file

p_path, r_path, alpha, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
with safe_open(p_path, 'np') as p, safe_open(r_path, 'np') as r:
    if set(p.keys()) != set(r.keys()):
        sys.exit(f"{p_path} and {r_path} hold different tensors")
    metadata = dict(p.metadata() or {})
    if metadata.get('gknet.config') != (r.metadata() or {}).get('gknet.config'):
        sys.exit("the two networks have different configurations")
    blended = {}
    for key in p.keys():
        a, b = p.get_tensor(key), r.get_tensor(key)
        if a.dtype.kind == 'f':
            blended[key] = (alpha * a.astype('float64') + (1 - alpha) * b.astype('float64')).astype(a.dtype)
        else:
            blended[key] = a  # counters and other integers: P's
save_file(blended, out, metadata=metadata)
print(f"wrote {out}: {alpha} x {p_path} + {1 - alpha} x {r_path}, {len(blended)} tensors")
