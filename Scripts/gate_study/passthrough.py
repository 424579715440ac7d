"""Issue 25 study: does the network follow a nudge of the foreground? A network that knows where a
composite's foreground belongs maps a slightly brighter or tinted copy of it to the same result;
one that moves every foreground by a typical amount passes the nudge through. Per image the
foreground (inside the mask) is scaled by 0.9 and 1.1 (brightness) and by (1.08, 1, 0.92) and
(0.92, 1, 1.08) per channel (a warm and a cool cast), the network is run on each copy, and the
pass-through is <out' - out, in' - in> / |in' - in|^2 inside the mask (1: the nudge passes
through; 0: the result ignores it). Features: the 13 statistics of the product's gate, the mean
pass-through of the two brightness and of the two cast nudges, and the spread of the four
results around the unnudged one. Sums as in two_networks.py.
Usage: .venv-ref/bin/python Scripts/gate_study/passthrough.py MODEL DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/passthrough.py --fit FIT.npz EVAL.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, masked_mean, one_network_sums, split_names  # beside this script
from frontier import FIT_SETTINGS, fit_gate, summary, sweep  # beside this script

NUDGES = [(0.9, 0.9, 0.9), (1.1, 1.1, 1.1), (1.08, 1.0, 0.92), (0.92, 1.0, 1.08)]


def features(model_path, root, split, out):
    network = load_network(model_path)
    feats, sums = [], []
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            o = network(c, mk, {}).clamp(0, 1)
            d = (o - c) * 255
            sums.append(one_network_sums(c, mk, real, d).numpy())
            passes, spread = [], 0
            for gains in NUDGES:
                gain = torch.tensor(gains).reshape(1, 3, 1, 1)
                nudged = c * (1 - mk) + (c * gain).clamp(0, 1) * mk
                o2 = network(nudged, mk, {}).clamp(0, 1)
                moved_in, moved_out = (nudged - c) * mk, (o2 - o) * mk
                passes.append((moved_in * moved_out).sum((1, 2, 3)) / (moved_in * moved_in).sum((1, 2, 3)).clamp_min(1e-9))
                spread = spread + masked_mean((o2 - o).abs() * 255, mk).mean(1)
            f = [change_statistics(c, mk, d), ((passes[0] + passes[1]) / 2)[:, None],
                 ((passes[2] + passes[3]) / 2)[:, None], (spread / len(NUDGES))[:, None]]
            feats.append(torch.cat(f, 1).numpy())
    np.savez(out, f=np.concatenate(feats), sums=np.concatenate(sums), names=np.array(split_names(root, split)))


def fit(fit_path, eval_path):
    tr, te = np.load(fit_path), np.load(eval_path)
    sf, se = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"fit {len(sf)} images; evaluation {len(se)} images, {(se[:, 0] < 300).sum().item()} below 300")
    one = (1.0, 0.0)
    helped = (se[:, 1] * 2 - se[:, 3] > 0).numpy()  # 2 td - dd > 0: the whole change helps
    low = (se[:, 0] < 300).numpy()
    for k, name in ((13, 'brightness pass-through'), (14, 'cast pass-through'), (15, 'spread')):
        v = te['f'][:, k]
        print(f"{name:24s} helped {v[helped].mean():+.3f}  harmed {v[~helped].mean():+.3f}  "
              f"< 300 {v[low].mean():+.3f}  >= 300 {v[~low].mean():+.3f}")
    for keep in ('share', 'whole'):
        for wd, floor in FIT_SETTINGS:
            for label, cols in (('13 statistics', slice(0, 13)), ('+ pass-through', slice(0, 16))):
                g = fit_gate(tr['f'][:, cols], sf, one, wd, floor)
                summary(f"{keep} wd {wd} floor {floor} {label}", sweep(g(te['f'][:, cols]), se, one, keep))


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
