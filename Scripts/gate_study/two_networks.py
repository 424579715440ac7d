"""Issue 25 study: two networks and a gate. P is a network trained with the plain loss (moves
every foreground by a typical amount), R one trained with the composite-relative loss (leaves
near-identity composites alone, but is timid on hard ones). Per image this records the colour
statistics of both changes and the inner products of the target change t = real - composite and
the changes dP = P(c) - c and dR = R(c) - c inside the mask, from which the foreground MSE of any
blend c + a dP + b dR follows:  |t - a dP - b dR|^2.
Then it fits logistic gates (on the fit set, thresholds chosen on the tuning set as the product's
calibration does) for: P alone gated by P's statistics (today's gate), P gated with R's statistics
added, the blend c + dR + g (dP - dR) (the gate moves between R and P), and the mean of the two
changes gated, c + g (dP + dR) / 2 (an ensemble of two networks).
R may be the word `flip`: then R is P run on the mirrored composite and mask, its output mirrored
back (test-time augmentation; the mean of the two changes is P with flip averaging).
Usage: .venv-ref/bin/python Scripts/gate_study/two_networks.py P R DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/two_networks.py --fit FIT.npz TUNE.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, masked_mean, split_names  # beside this script


def features(p_path, r_path, root, split, out):
    p = load_network(p_path)
    if r_path == 'flip':
        def r(c, mk, trace): return torch.flip(p(torch.flip(c, (3,)), torch.flip(mk, (3,)), trace), (3,))
    else:
        r = load_network(r_path)
    feats, sums = [], []
    pool = masked_mean
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            dp = (p(c, mk, {}).clamp(0, 1) - c) * 255
            dr = (r(c, mk, {}).clamp(0, 1) - c) * 255
            t = (real - c) * 255
            den = mk.sum((1, 2, 3)).clamp_min(100) * 3
            def dot(x, y): return (x * y * mk).sum((1, 2, 3)) / den
            sums.append(torch.stack([dot(t, t), dot(t, dp), dot(t, dr), dot(dp, dp), dot(dr, dr), dot(dp, dr),
                                     den / (3 * c.shape[2] * c.shape[3])], 1).numpy())
            f = [change_statistics(c, mk, dp),
                 pool(dr, mk), pool(dr.abs(), mk), pool(dp - dr, mk), pool((dp - dr).abs(), mk)]
            feats.append(torch.cat(f, 1).numpy())
    np.savez(out, f=np.concatenate(feats), sums=np.concatenate(sums), names=np.array(split_names(root, split)))


# layout: P change 6 (change, |change|) | colour 6 | mask 1 | R change 6 | P - R 6
groups = {'P': range(0, 6), 'col': range(6, 12), 'm': range(12, 13), 'R': range(13, 19), 'PR': range(19, 25)}


def residual(s, a, b):
    """Foreground MSE of c + a dP + b dR per image (s: the sums of `features`, one row per image)."""
    tt, tp, tr, pp, rr, pr = s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4], s[:, 5]
    return tt - 2 * a * tp - 2 * b * tr + a * a * pp + b * b * rr + 2 * a * b * pr


def report(label, s, res):
    tt, share = s[:, 0], s[:, 6]
    low = tt < 300
    # whole-image MSE = foreground MSE x mask share (the background is untouched)
    db = 10 * torch.log10(tt * share + 1e-6) - 10 * torch.log10(res * share + 1e-6)
    return (f"{label}: {(res.mean() / tt.mean()).item():.3f}x, {db.mean().item():+.2f} dB, "
            f"{((res > tt + 1e-9).double().mean() * 100).item():4.1f} % worse, < 300 {(res[low].mean() / tt[low].mean()).item():.2f}x")


def fit_logistic(x_fit, s_fit, weights, wd=1e-3, floor=100, steps=1500, objective='fmse'):
    """Fits a logistic gate g = sigmoid(b + w . standardized x) on the features x_fit (N x K,
    standardized here) by full-batch Adam; `weights(g)` maps the gate's values to the blend (a, b)
    of `residual`. objective 'fmse': the loss of `gknet calibrate --gate` (each image's residual over
    its composite's fMSE + floor); 'classify': cross-entropy of "the whole blend helps", each image
    weighted by how much it helps or harms relative to its composite (|gain| / (fMSE + floor)).
    Returns the function features -> g (no gradient)."""
    x = torch.tensor(x_fit).double(); mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2)
    one = torch.ones(len(s_fit), dtype=torch.float64)
    gain = s_fit[:, 0] - residual(s_fit, *weights(one))
    for _ in range(steps):
        g = torch.sigmoid(z @ w + b)
        if objective == 'fmse':
            loss = (residual(s_fit, *weights(g)) / (s_fit[:, 0] + floor)).mean()
        else:
            loss = (torch.nn.functional.binary_cross_entropy(g, (gain > 0).double(), reduction='none')
                    * gain.abs() / (s_fit[:, 0] + floor)).mean()
        loss = loss + wd * (w * w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    w, b = w.detach(), b.detach()
    return lambda y: torch.sigmoid(((torch.tensor(y).double() - mu) / sd) @ w + b)


def fit_gate(x_fit, s_fit, x_tune, s_tune, weights, wd=1e-3, floor=100):
    """Fits a logistic gate (`fit_logistic`), then chooses its threshold on the tuning set by the
    product's rule (lowest mean with at most 20 % made worse). Returns (threshold, tuning residuals)."""
    gate = fit_logistic(x_fit, s_fit, weights, wd, floor)
    return choose_threshold(gate(x_tune), s_tune, weights)


def choose_threshold(g, s_tune, weights, keep='share', band_limit=None):
    """The product's threshold rule on the gate values g of the tuning images: among 0, 0.05, ...,
    0.95, the lowest mean with at most 20 % made worse (and, with `band_limit`, the composites below
    300 at most that ratio); none qualifying, the fewest made worse. An open gate keeps g of the
    blend (`share`) or all of it (`whole`). Returns (threshold, tuning residuals)."""
    tt = s_tune[:, 0]; low = tt < 300
    rows = []
    with torch.no_grad():
        for tau in [k / 20 for k in range(0, 20)]:
            kept = torch.where(g < tau, torch.zeros_like(g), g if keep == 'share' else torch.ones_like(g))
            res = residual(s_tune, *weights(kept))
            rows.append((tau, res, (res > tt + 1e-9).double().mean().item() * 100, (res.mean() / tt.mean()).item(),
                         (res[low].mean() / tt[low].mean()).item()))
    ok = [r for r in rows if r[2] <= 20 and (band_limit is None or r[4] <= band_limit)]
    best = min(ok, key=lambda r: r[3]) if ok else min(rows, key=lambda r: r[2])
    return best[0], best[1]


def fit(fit_path, tune_path):
    tr, te = np.load(fit_path), np.load(tune_path)
    s_fit, s_tune = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"tuning images: {len(s_tune)}, < 300: {(s_tune[:, 0] < 300).sum().item()}")
    one, zero = torch.ones(len(s_tune)).double(), torch.zeros(len(s_tune)).double()
    print(report('P alone', s_tune, residual(s_tune, one, zero)))
    print(report('R alone', s_tune, residual(s_tune, zero, one)))
    for alpha in (0.25, 0.5, 0.75):
        print(report(f'{alpha} P + {1 - alpha} R', s_tune, residual(s_tune, alpha * one, (1 - alpha) * one)))

    def run(names, blend, wd=1e-3, floor=100):
        idx = [i for n in names for i in groups[n]]
        def weights(g):
            if blend == 'mean': return (g / 2, g / 2)
            return (g, 1 - g) if blend else (g, torch.zeros_like(g))
        tau, res = fit_gate(tr['f'][:, idx], s_fit, te['f'][:, idx], s_tune, weights, wd, floor)
        kind = {'mean': 'gate mean', True: 'blend R..P', False: 'gate on P'}[blend]
        print(report(f"{kind:10s} {'+'.join(names):14s} wd {wd:<6} t {tau:.2f}", s_tune, res))
    for blend in (False, True, 'mean'):
        for names in (['P', 'col', 'm'], ['P', 'col', 'm', 'R'], ['P', 'col', 'm', 'R', 'PR'], ['R', 'PR']):
            for wd in (1e-3, 1e-2):
                run(names, blend, wd)


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:6])
