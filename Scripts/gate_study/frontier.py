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
from two_networks import residual  # beside this script


def fit_gate(x, s, blend, wd, floor, objective='fmse'):
    """The logistic gate of the product on features x (N x K, standardized here); `blend` = (a, b):
    the result is c + g (a dP + b dR). objective 'fmse': the product's loss (the result's fMSE over
    the composite's + floor); 'classify': cross-entropy of "the whole change helps", each image
    weighted by how much it helps or harms relative to its composite (|gain| / (fMSE + floor)).
    Returns the function features -> g."""
    x = torch.tensor(x).double(); mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2)
    for _ in range(2000):
        g = torch.sigmoid(z @ w + b)
        if objective == 'fmse':
            loss = (residual(s, g * blend[0], g * blend[1]) / (s[:, 0] + floor)).mean()
        else:
            gain = s[:, 0] - residual(s, blend[0] + 0 * g, blend[1] + 0 * g)
            helps = (gain > 0).double()
            loss = (torch.nn.functional.binary_cross_entropy(g, helps, reduction='none')
                    * gain.abs() / (s[:, 0] + floor)).mean()
        loss = loss + wd * (w * w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    w, b = w.detach(), b.detach()
    return lambda y: torch.sigmoid(((torch.tensor(y).double() - mu) / sd) @ w + b)


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
    def blocks(z):
        d4, g = z[:, :256], z[:, 256:]
        return np.concatenate([d4, d4[:, :128] - d4[:, 128:], g, g[:, :64] - g[:, 64:]], 1)
    zf, ze = blocks(tr['deep']), blocks(te['deep'])
    mu, sd = zf.mean(0), zf.std(0) + 1e-6
    _, _, vt = np.linalg.svd((zf - mu) / sd, full_matrices=False)
    for keep in ('share', 'whole'):
        for wd, floor in ((1e-3, 100), (1e-2, 30), (1e-1, 30)):
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
            for wd, floor in ((1e-3, 100), (1e-2, 30), (1e-1, 30)):
                for name, cols in (('P stats', slice(0, 13)), ('P, R, P-R stats', slice(0, 25))):
                    g = fit_gate(pr['f'][:, cols], pf, half, wd, floor)
                    summary(f"two-network mean, {keep} wd {wd} floor {floor} {name}", sweep(g(pe['f'][:, cols]), ps, half, keep))


if __name__ == '__main__':
    main(*sys.argv[1:])
