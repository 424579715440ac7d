"""Issue 25 study: do the network's own deep features tell a near-identity composite? The gate
of the product sees 13 colour statistics; here it also sees the network's bottleneck features
(D4, after the LRE's context is merged; 1/16 of the image) and the LRE's token map, each pooled
inside and outside the (downsampled) mask, reduced to a few principal components fitted on the
fit set. A larger fit set helps such a gate: `gknet synthesize --per-photo 30` on the gate's
objects gives 2,370 composites instead of 474.
Usage: .venv-ref/bin/python Scripts/gate_study/deep.py MODEL DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/deep.py --fit FIT.npz TUNE.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, masked_mean, one_network_sums, split_names  # beside this script
from two_networks import report, residual  # beside this script
from seam import fit_and_choose  # beside this script


def features(model_path, root, split, out):
    network = load_network(model_path)
    feats, deep, sums = [], [], []
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            trace = {}
            p = network(c, mk, trace).clamp(0, 1)
            d = (p - c) * 255
            sums.append(one_network_sums(c, mk, real, d).numpy())
            feats.append(change_statistics(c, mk, d).numpy())
            pooled = []
            for key in ('D4', 'G_map'):
                x = trace[key]
                small = torch.nn.functional.adaptive_avg_pool2d(mk, x.shape[2:])
                pooled += [masked_mean(x, small), masked_mean(x, 1 - small)]
            deep.append(torch.cat(pooled, 1).numpy())
    np.savez(out, f=np.concatenate(feats), deep=np.concatenate(deep), sums=np.concatenate(sums),
             names=np.array(split_names(root, split)))


def deep_blocks(z):
    """The pooled features of `features` (D4 inside, D4 outside, G_map inside, G_map outside) with
    the inside - outside differences of each added."""
    d4, g = z[:, :256], z[:, 256:]
    return np.concatenate([d4, d4[:, :128] - d4[:, 128:], g, g[:, :64] - g[:, 64:]], 1)


def principal_components(fit_features):
    """The standardisation (mean, deviation) of `deep_blocks` of the fit set and its principal
    directions (rows of the returned matrix, strongest first)."""
    mu, sd = fit_features.mean(0), fit_features.std(0) + 1e-6
    _, _, vt = np.linalg.svd((fit_features - mu) / sd, full_matrices=False)
    return mu, sd, vt


def fit(fit_path, tune_path):
    tr, te = np.load(fit_path), np.load(tune_path)
    s_fit, s_tune = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"fit images: {len(s_fit)}, tuning images: {len(s_tune)}, < 300: {(s_tune[:, 0] < 300).sum().item()}")
    print(report('no gate', s_tune, residual(s_tune, torch.ones(len(s_tune)).double(), 0)))
    # principal components of the pooled deep features (fg, bg and fg - bg of D4 and G_map), on the fit set
    zf, zt = deep_blocks(tr['deep']), deep_blocks(te['deep'])
    mu, sd, vt = principal_components(zf)
    for keep, wd, floor, band in (('share', 1e-3, 100, None), ('whole', 1e-2, 30, None), ('whole', 1e-2, 30, 1.0)):
        for components in (0, 4, 8, 16, 32):
            xf = np.concatenate([tr['f'], ((zf - mu) / sd) @ vt[:components].T], 1)
            xt = np.concatenate([te['f'], ((zt - mu) / sd) @ vt[:components].T], 1)
            for decay in ((wd,) if components == 0 else (wd, 10 * wd)):
                tau, res = fit_and_choose(xf, s_fit, xt, s_tune, keep, decay, floor, band)
                print(report(f"{keep} wd {decay:<6} floor {floor:<4} band {band} deep {components:2d} t {tau:.2f}",
                             s_tune, res))


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
