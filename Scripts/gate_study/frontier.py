"""Issue 25 study: how far can a gate go on the near-identity band at a given mean? For each gate
(fitted on a fit set as `gknet calibrate --gate` does) every threshold from 0 to 1 in steps of 0.01
is scored on an evaluation set, and two points of the trade are printed: the lowest ratio of the
composites below 300 among the thresholds whose mean is at most 0.85x the composites' (the
issue's mean target), and the lowest mean among the thresholds whose band is at most 1.0x. The
tuning split has 32 composites below 300, too few to trace this; `gknet synthesize --per-photo
30` on the tuning photos gives 1,320 composites with 166 below 300.
Inputs: the .npz files of deep.py (the network's 13 statistics and pooled deep features) and of
two_networks.py (a second network; gates on the mean of the two changes).
Usage: .venv-ref/bin/python Scripts/gate_study/frontier.py FIT_DEEP.npz EVAL_DEEP.npz [FIT_PAIR.npz EVAL_PAIR.npz]
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from two_networks import fit_logistic, residual  # beside this script
from deep import deep_blocks, principal_components  # beside this script


# the (weight decay, loss floor) pairs every study compares: the first gates', the shipped gate's, a stronger decay
FIT_SETTINGS = ((1e-3, 100), (1e-2, 30), (1e-1, 30))


def fit_gate(x, s, blend, wd, floor, objective='fmse'):
    """The product's logistic gate (two_networks.fit_logistic, 2,000 steps) for the result
    c + g (a dP + b dR), `blend` = (a, b). Returns the function features -> g."""
    return fit_logistic(x, s, lambda g: (g * blend[0], g * blend[1]), wd, floor, steps=2000, objective=objective)


def sweep(g, s, blend, keep):
    """(threshold, x composite, % worse, band ratio) for thresholds 0, 0.01, ..., 1."""
    tt = s[:, 0]; low = tt < 300
    rows = []
    for tau in np.arange(0, 1.001, 0.01):
        k = torch.where(g < tau, torch.zeros_like(g), g if keep == 'share' else torch.ones_like(g))
        res = residual(s, k * blend[0], k * blend[1])
        rows.append((tau, (res.mean() / tt.mean()).item(), (res > tt + 1e-9).double().mean().item() * 100,
                     (res[low].mean() / tt[low].mean()).item()))
    return rows


def summary(label, rows):
    at_mean = [r for r in rows if r[1] <= 0.85]
    at_band = [r for r in rows if r[3] <= 1.0]
    a = min(at_mean, key=lambda r: r[3]) if at_mean else None
    b = min(at_band, key=lambda r: r[1]) if at_band else None
    left = f"band {a[3]:.2f}x ({a[1]:.3f}x, {a[2]:4.1f} % worse, t {a[0]:.2f})" if a else "mean never <= 0.85x"
    right = f"mean {b[1]:.3f}x ({b[2]:4.1f} % worse, t {b[0]:.2f})" if b else "band never <= 1.0x"
    print(f"{label:46s} | at mean <= 0.85x: {left} | at band <= 1.0x: {right}", flush=True)


def perfect(s, blend, label):
    """The decision that changes exactly the images the change improves (needs the real image)."""
    res = residual(s, blend[0] * torch.ones(len(s)).double(), blend[1] * torch.ones(len(s)).double())
    k = (res < s[:, 0]).double()
    res = residual(s, k * blend[0], k * blend[1]); tt = s[:, 0]; low = tt < 300
    print(f"{label:46s} | {(res.mean() / tt.mean()).item():.3f}x, band {(res[low].mean() / tt[low].mean()).item():.2f}x")


def main(fit_deep, eval_deep, fit_pair=None, eval_pair=None):
    tr, te = np.load(fit_deep), np.load(eval_deep)
    sf, se = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"fit {len(sf)} images; evaluation {len(se)} images, {(se[:, 0] < 300).sum().item()} below 300")
    one = (1.0, 0.0)
    perfect(se, one, 'the network, perfect decision')
    zf, ze = deep_blocks(tr['deep']), deep_blocks(te['deep'])
    mu, sd, vt = principal_components(zf)
    for keep in ('share', 'whole'):
        for wd, floor in FIT_SETTINGS:
            for components in (0, 8, 16):
                xf = np.concatenate([tr['f'], ((zf - mu) / sd) @ vt[:components].T], 1)
                xe = np.concatenate([te['f'], ((ze - mu) / sd) @ vt[:components].T], 1)
                g = fit_gate(xf, sf, one, wd, floor)
                summary(f"{keep} wd {wd} floor {floor} deep {components}", sweep(g(xe), se, one, keep))
                if keep == 'whole':
                    g = fit_gate(xf, sf, one, wd, floor, 'classify')
                    summary(f"classify wd {wd} floor {floor} deep {components}", sweep(g(xe), se, one, keep))
    if fit_pair:
        pr, pe = np.load(fit_pair), np.load(eval_pair)
        pf, ps = torch.tensor(pr['sums']).double(), torch.tensor(pe['sums']).double()
        half = (0.5, 0.5)
        perfect(ps, half, 'mean of two networks, perfect decision')
        for keep in ('share', 'whole'):
            for wd, floor in FIT_SETTINGS:
                for name, cols in (('P stats', slice(0, 13)), ('P, R, P-R stats', slice(0, 25))):
                    g = fit_gate(pr['f'][:, cols], pf, half, wd, floor)
                    summary(f"two-network mean, {keep} wd {wd} floor {floor} {name}", sweep(g(pe['f'][:, cols]), ps, half, keep))


if __name__ == '__main__':
    main(*sys.argv[1:])
