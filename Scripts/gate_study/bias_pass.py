"""Issue 25 study: subtract the network's own bias, measured by a second pass. The network moves a
nearly right composite by a change that belongs to the photo (content_bias.py); applied again to
its own output o1 = f(c) it moves it again, o2 = f(o1), by d2 = o2 - o1, which holds part of that
same bias (on the perfect composites of identity_set.py, c + d1 - d2 costs 260 where c + d1 costs
414). The corrected result is c + d1 - a d2 for a step a, gated by the product's logistic gate.
Per image this records the inner products of the target change t, d1 and d2 inside the mask (the
layout of two_networks.py with dP = d1, dR = d2, so its `residual` scores c + g (d1 - a d2)), the
13 statistics of d1, the mean and mean absolute d2, and the 13 statistics of d1 - a d2 for each a
of STEPS.
Usage: .venv-ref/bin/python Scripts/gate_study/bias_pass.py MODEL DATASET_ROOT SPLIT OUT.npz
Then:  .venv-ref/bin/python Scripts/gate_study/bias_pass.py --fit FIT.npz EVAL.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, masked_mean, split_names  # beside this script
from frontier import FIT_SETTINGS, fit_gate, summary, sweep, perfect  # beside this script
from two_networks import report, residual  # beside this script

STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)


def features(model_path, root, split, out):
    network = load_network(model_path)
    sums, first, second, combined = [], [], [], []
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            o1 = network(c, mk, {}).clamp(0, 1)
            o2 = network(o1, mk, {}).clamp(0, 1)
            d1, d2, t = (o1 - c) * 255, (o2 - o1) * 255, (real - c) * 255
            den = mk.sum((1, 2, 3)).clamp_min(100) * 3
            def dot(x, y): return (x * y * mk).sum((1, 2, 3)) / den
            sums.append(torch.stack([dot(t, t), dot(t, d1), dot(t, d2), dot(d1, d1), dot(d2, d2), dot(d1, d2),
                                     den / (3 * c.shape[2] * c.shape[3])], 1).numpy())
            first.append(change_statistics(c, mk, d1).numpy())
            second.append(torch.cat([masked_mean(d2, mk), masked_mean(d2.abs(), mk)], 1).numpy())
            combined.append(np.stack([change_statistics(c, mk, d1 - a * d2).numpy() for a in STEPS], 1))
    np.savez(out, sums=np.concatenate(sums), first=np.concatenate(first), second=np.concatenate(second),
             combined=np.concatenate(combined), names=np.array(split_names(root, split)))


def fit(fit_path, eval_path):
    tr, te = np.load(fit_path), np.load(eval_path)
    sf, se = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"fit {len(sf)} images; evaluation {len(se)} images, {(se[:, 0] < 300).sum().item()} below 300")
    for k, a in enumerate(STEPS):
        blend = (1.0, -a)
        ones = torch.ones(len(se)).double()
        print(report(f"a {a:.2f}, no gate", se, residual(se, ones, -a * ones)))
        perfect(se, blend, f"a {a:.2f}, perfect decision")
        inputs = {'statistics of d1 - a d2': (tr['combined'][:, k], te['combined'][:, k]),
                  '+ d1 and d2 statistics': (np.concatenate([tr['combined'][:, k], tr['first'][:, :6], tr['second']], 1),
                                             np.concatenate([te['combined'][:, k], te['first'][:, :6], te['second']], 1))}
        for keep in ('share', 'whole'):
            for wd, floor in FIT_SETTINGS:
                for name, (xf, xe) in inputs.items():
                    g = fit_gate(xf, sf, blend, wd, floor)
                    summary(f"a {a:.2f} {keep} wd {wd} floor {floor} {name}", sweep(g(xe), se, blend, keep))


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
