"""Issue 25 study: does the network's change on a region that needs none tell a near-identity
composite? For each composite c with mask m, the mask is moved (rolled by half the image, or
mirrored) to where it covers the least of the foreground; that probe region holds background
content, which needs no change by construction. The network is run on (c, probe) for the two probes
with the least overlap, and its change there is the image's own "noise floor": how far this network
moves a region of this photo that is already harmonious. Features per image: the colour statistics
of features.py (change and |change| inside the mask, composite colour inside the mask, background
colour, mask share), the same change statistics inside the probes (outside the real foreground),
the probes' overlap with the foreground, and log(|change| / |probe change|). Sums as in
two_networks.py (target and change inner products inside the mask).
Usage: .venv-ref/bin/python Scripts/gate_study/probe.py MODEL DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/probe.py --fit FIT.npz TUNE.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import batches, change_statistics, load_network, masked_mean, one_network_sums, split_names  # beside this script
from two_networks import fit_gate, report, residual  # beside this script


def probe_masks(mask, count=2):
    """The `count` moved copies of each mask (N x 1 x H x W) that overlap the mask least, and
    their overlaps (share of the probe's area on the foreground), as (count x N x 1 x H x W, count x N)."""
    h, w = mask.shape[2:]
    candidates = [torch.roll(mask, (0, w // 2), (2, 3)), torch.roll(mask, (h // 2, 0), (2, 3)),
                  torch.roll(mask, (h // 2, w // 2), (2, 3)), torch.flip(mask, (3,)), torch.flip(mask, (2,)),
                  torch.roll(mask, (0, w // 4), (2, 3)), torch.roll(mask, (h // 4, 0), (2, 3))]
    stack = torch.stack(candidates)                                        # K x N x 1 x H x W
    overlap = (stack * mask).sum((2, 3, 4)) / stack.sum((2, 3, 4)).clamp_min(1e-6)  # K x N
    order = overlap.argsort(0)[:count]                                     # count x N
    index = torch.arange(mask.shape[0])
    return stack[order, index], overlap[order, index]


def features(model_path, root, split, out):
    network = load_network(model_path)
    feats, sums = [], []
    with torch.no_grad():
        for _, c, mk, real in batches(root, split):
            d = (network(c, mk, {}).clamp(0, 1) - c) * 255
            # two_networks.py's layout, without a second network: tt, td, 0, dd, 0, 0, mask share
            sums.append(one_network_sums(c, mk, real, d).numpy())
            probes, overlaps = probe_masks(mk)
            f = [change_statistics(c, mk, d)]
            size = masked_mean(d.abs(), mk).mean(1)
            probe_sizes = []
            for probe, overlap in zip(probes, overlaps):
                dq = (network(c, probe, {}).clamp(0, 1) - c) * 255
                region = probe * (1 - mk)
                f += [masked_mean(dq, region), masked_mean(dq.abs(), region), overlap[:, None]]
                probe_sizes.append(masked_mean(dq.abs(), region).mean(1))
            floor = torch.stack(probe_sizes).mean(0)
            f.append((torch.log(size + 0.5) - torch.log(floor + 0.5))[:, None])
            feats.append(torch.cat(f, 1).numpy())
    np.savez(out, f=np.concatenate(feats), sums=np.concatenate(sums), names=np.array(split_names(root, split)))


# layout: change 6 | colour 6 | mask 1 | probe 1: change 6, overlap 1 | probe 2: change 6, overlap 1 | log ratio 1
groups = {'P': range(0, 6), 'col': range(6, 12), 'm': range(12, 13), 'q1': range(13, 20), 'q2': range(20, 27),
          'ratio': range(27, 28)}


def fit(fit_path, tune_path):
    tr, te = np.load(fit_path), np.load(tune_path)
    s_fit, s_tune = torch.tensor(tr['sums']).double(), torch.tensor(te['sums']).double()
    print(f"tuning images: {len(s_tune)}, < 300: {(s_tune[:, 0] < 300).sum().item()}")
    print(report('no gate', s_tune, residual(s_tune, torch.ones(len(s_tune)).double(), 0)))
    for names in (['P', 'col', 'm'], ['P', 'col', 'm', 'ratio'], ['P', 'col', 'm', 'q1', 'ratio'],
                  ['P', 'col', 'm', 'q1', 'q2', 'ratio'], ['P', 'm', 'ratio']):
        idx = [i for n in names for i in groups[n]]
        for wd in (1e-3, 1e-2):
            tau, res = fit_gate(tr['f'][:, idx], s_fit, te['f'][:, idx], s_tune, lambda g: (g, 0), wd)
            print(report(f"{'+'.join(names):24s} wd {wd:<6} t {tau:.2f}", s_tune, res))


if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
