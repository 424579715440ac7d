"""Issue 25 study: does the mask's boundary tell a near-identity composite? A synthesized composite
changes everything inside its mask, and a mask that does not hug the object exactly takes a rim
of background with it, so a composite that needed a change has a seam at the mask's edge that the
real photo does not have; a composite that needs none has only the photo's own edge. The network's
change then either closes a seam (it was needed) or opens one (it was not). Per image, over pairs
of pixels k apart (horizontally and vertically) with one inside the mask and one outside:
    Dc = mean |c_in - c_out|^2 (the composite's step across the edge),
    Dp = mean |p_in - c_out|^2 (the step after the change; the background is not changed),
    Db = mean |c_a - c_b|^2 over pairs k apart that are both outside (the background's own texture),
and as features log((Dp + 1) / (Dc + 1)), log((Dc + 1) / (Db + 1)) and the share of the step
that the change closes, <p_in - c_in, c_out - c_in> / (Dc + 1), for k = 2 and 4, beside the 13
statistics of the product's gate. Sums as in two_networks.py (target and change inner products
inside the mask). The fit compares gates with and without these features, kept as a share or as
a whole decision, by the product's rules (threshold on the tuning split: lowest mean with at most
20 % worse, and optionally the composites below 300 not made worse on average).
Usage: .venv-ref/bin/python Scripts/gate_study/seam.py MODEL DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/seam.py --fit FIT.npz TUNE.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, one_network_sums, split_names  # beside this script
from two_networks import choose_threshold, fit_logistic, report, residual  # beside this script


def edge_pairs(x, mask, k):
    """Pixel pairs k apart (right and down neighbours): the first's and second's values
    (N x 3 x P each, flattened over both directions) and, per pair, whether it straddles the
    mask's edge (inside -> outside oriented: `inside`, `outside`) or lies outside (`both_out`)."""
    a = torch.cat([x[:, :, :, :-k].flatten(2), x[:, :, :-k, :].flatten(2)], 2)
    b = torch.cat([x[:, :, :, k:].flatten(2), x[:, :, k:, :].flatten(2)], 2)
    ma = torch.cat([mask[:, :, :, :-k].flatten(2), mask[:, :, :-k, :].flatten(2)], 2) >= 0.5
    mb = torch.cat([mask[:, :, :, k:].flatten(2), mask[:, :, k:, :].flatten(2)], 2) >= 0.5
    return a, b, ma, mb


def seam_features(c, p, mask, k):
    """log((Dp + 1) / (Dc + 1)), log((Dc + 1) / (Db + 1)) and the closed share (N x 3), 255 scale."""
    c, p = c * 255, p * 255
    ca, cb, ma, mb = edge_pairs(c, mask, k)
    pa, pb, _, _ = edge_pairs(p, mask, k)
    a_in = (ma & ~mb).float()  # a inside, b outside
    b_in = (mb & ~ma).float()
    out = (~ma & ~mb).float()
    n_edge = (a_in + b_in).sum(2).clamp_min(1)
    # inside value, outside value per straddling pair
    c_in = ca * a_in + cb * b_in
    c_out = cb * a_in + ca * b_in
    p_in = pa * a_in + pb * b_in
    edge = a_in + b_in
    dc = (((c_in - c_out) ** 2).sum(1, keepdim=True) * edge).sum(2) / n_edge
    dp = (((p_in - c_out) ** 2).sum(1, keepdim=True) * edge).sum(2) / n_edge
    closed = (((p_in - c_in) * (c_out - c_in)).sum(1, keepdim=True) * edge).sum(2) / n_edge
    db = (((ca - cb) ** 2).sum(1, keepdim=True) * out).sum(2) / out.sum(2).clamp_min(1)
    return torch.cat([torch.log((dp + 1) / (dc + 1)), torch.log((dc + 1) / (db + 1)), closed / (dc + 1)], 1)


def features(model_path, root, split, out):
    network = load_network(model_path)
    feats, sums = [], []
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            p = network(c, mk, {}).clamp(0, 1)
            p = c + (p - c) * mk  # what the product returns: the background is the composite's
            d = (p - c) * 255
            sums.append(one_network_sums(c, mk, real, d).numpy())
            f = [change_statistics(c, mk, d), seam_features(c, p, mk, 2), seam_features(c, p, mk, 4)]
            feats.append(torch.cat(f, 1).numpy())
    np.savez(out, f=np.concatenate(feats), sums=np.concatenate(sums), names=np.array(split_names(root, split)))


# layout: change 6 | colour 6 | mask 1 | seam k=2: 3 | seam k=4: 3
groups = {'P': range(0, 6), 'col': range(6, 12), 'm': range(12, 13), 's2': range(13, 16), 's4': range(16, 19),
          'open2': range(13, 14), 'open4': range(16, 17)}


def fit_and_choose(x_fit, s_fit, x_tune, s_tune, keep, wd, floor, band_limit):
    """The product's fit (logistic, loss relative to the composite's fMSE + floor, soft share), then
    the threshold on the tuning set: lowest mean with at most 20 % worse (and the band < 300 at
    most `band_limit` times its composites' fMSE when given). Returns (threshold, residuals)."""
    gate = fit_logistic(x_fit, s_fit, lambda g: (g, 0), wd, floor, steps=2000)
    return choose_threshold(gate(x_tune), s_tune, lambda g: (g, 0), keep, band_limit)


def fit(fit_path, tune_path):
    tr, te = np.load(fit_path), np.load(tune_path)
    s_fit, s_tune = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"fit images: {len(s_fit)}, tuning images: {len(s_tune)}, < 300: {(s_tune[:, 0] < 300).sum().item()}")
    print(report('no gate', s_tune, residual(s_tune, torch.ones(len(s_tune)).double(), 0)))
    # how the seam features alone separate the images the change helps from those it harms
    for name, data, s in (('fit', tr, s_fit), ('tuning', te, s_tune)):
        helped = (residual(s, torch.ones(len(s)).double(), 0) < s[:, 0]).numpy()
        low = (s[:, 0] < 300).numpy()
        for k, col in (('open k=2', 13), ('open k=4', 16), ('seam k=2', 14), ('closed k=2', 15)):
            v = data['f'][:, col]
            print(f"{name:6s} {k:10s} helped {v[helped].mean():+.3f}  harmed {v[~helped].mean():+.3f}  "
                  f"< 300 {v[low].mean():+.3f}  >= 300 {v[~low].mean():+.3f}")
    for keep, wd, floor, band in (('share', 1e-3, 100, None), ('whole', 1e-2, 30, None), ('whole', 1e-2, 30, 1.0)):
        for names in (['P', 'col', 'm'], ['P', 'col', 'm', 'open2'], ['P', 'col', 'm', 'open2', 'open4'],
                      ['P', 'col', 'm', 's2'], ['P', 'col', 'm', 's2', 's4']):
            idx = [i for n in names for i in groups[n]]
            tau, res = fit_and_choose(tr['f'][:, idx], s_fit, te['f'][:, idx], s_tune, keep, wd, floor, band)
            label = f"{keep} wd {wd:<6} floor {floor:<4} band {band} {'+'.join(names):18s} t {tau:.2f}"
            print(report(label, s_tune, res))


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
