"""Issue 25 study: does a second pass of the network tell a near-identity composite? For each
composite c the twin's output o1 = f(c), then o2 = f(o1) (the network applied to its own result).
Features per image: the colour statistics of features.py (change, |change|, composite colour
inside the mask, background colour, mask share) plus the same of the second change o2 - o1 and
the share of the first change that the second one continues (its projection on the first change,
over the first change's squared size), and the sums A, B, C of ChangeGateSample.
Usage: .venv-ref/bin/python Scripts/gate_study/second_pass.py MODEL DATASET_ROOT SPLIT OUT.npz
Then: .venv-ref/bin/python Scripts/gate_study/second_pass.py --fit FIT.npz TUNE.npz
"""
import sys, os, json, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)

def load_batch(root, names, size=256):
    """Composites, masks and real images (N x 3|1 x size x size, in [0, 1]) of an iHarmony4-style set."""
    from PIL import Image
    def load(p, mode='RGB'):
        im = Image.open(p).convert(mode)
        if im.size != (size, size): im = im.resize((size, size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)
    cs, ms, rs = [], [], []
    for n in names:
        parts = os.path.splitext(os.path.basename(n))[0].split('_')
        cs.append(load(os.path.join(root, 'composite_images', os.path.basename(n))).permute(2, 0, 1))
        ms.append(load(os.path.join(root, 'masks', '_'.join(parts[:-1]) + '.png'), 'L')[None])
        rs.append(load(os.path.join(root, 'real_images', '_'.join(parts[:-2]) + '.jpg')).permute(2, 0, 1))
    return torch.stack(cs), torch.stack(ms), torch.stack(rs)


def split_names(root, split):
    """The composite names of a split of an iHarmony4-style set (ROOT/NAME_SPLIT.txt)."""
    with open(os.path.join(root, os.path.basename(root) + '_' + split + '.txt')) as listing:
        return [line.strip() for line in listing if line.strip()]


def batches(root, split, size=16):
    """The composites, masks and real images of a split in batches of `size`: yields (index of the
    first, composites, masks, reals), printing the index as progress."""
    names = split_names(root, split)
    for i in range(0, len(names), size):
        yield (i,) + load_batch(root, names[i:i + size])
        print(i, flush=True)


def masked_mean(x, w):
    """Per image and channel, the mean of x weighted by w (N x C)."""
    return (x * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6)


def change_statistics(c, mk, d):
    """The 13 statistics of the product's gate (ChangeGate.featureNames) per image (N x 13): the
    mean change and mean absolute change inside the mask, the mean composite colour inside and
    outside it, the mask's share."""
    return torch.cat([masked_mean(d, mk), masked_mean(d.abs(), mk), masked_mean(c, mk), masked_mean(c, 1 - mk),
                      mk.mean((1, 2, 3))[:, None]], 1)


def one_network_sums(c, mk, real, d):
    """two_networks.py's per-image sums for one network's change d (255 scale), N x 7: the target's
    and the change's inner products inside the mask (tt, td, 0, dd, 0, 0) and the mask's share."""
    t = (real - c) * 255
    den = mk.sum((1, 2, 3)).clamp_min(100) * 3
    def dot(x, y): return (x * y * mk).sum((1, 2, 3)) / den
    zero = torch.zeros_like(den)
    return torch.stack([dot(t, t), dot(t, d), zero, dot(d, d), zero, zero, den / (3 * c.shape[2] * c.shape[3])], 1)


def load_network(path):
    """The twin with a model file's configuration and weights, in evaluation mode."""
    import gknet
    from safetensors import safe_open
    from safetensors.torch import load_file
    meta = safe_open(path, 'pt').metadata()
    network = gknet.GKNet(gknet.GKNetConfig.from_json_dict(json.loads(meta['gknet.config'])))
    print(network.load_state_dict({k: v.float() for k, v in load_file(path).items()}, strict=False))
    return network.eval()


def features(model_path, root, split, out):
    m = load_network(model_path)
    names = split_names(root, split)
    feats, abc = [], []
    pool = masked_mean
    with torch.no_grad():
        for i in range(0, len(names), 16):
            c, mk, r = load_batch(root, names[i:i + 16])
            o1 = m(c, mk, {}).clamp(0, 1)
            o2 = m(o1, mk, {}).clamp(0, 1)
            d, t = (o1 - c) * 255, (r - c) * 255
            d2 = (o2 - o1) * 255
            den = mk.sum((1, 2, 3)).clamp_min(100) * 3
            A = (t * t).sum((1, 2, 3)) / den; B = (t * d).sum((1, 2, 3)) / den; C = (d * d).sum((1, 2, 3)) / den
            along = (d2 * d * mk).sum((1, 2, 3)) / ((d * d * mk).sum((1, 2, 3)) + 1e-3)
            size2 = ((d2 * d2 * mk).sum((1, 2, 3)) / ((d * d * mk).sum((1, 2, 3)) + 1e-3)).sqrt()
            f = [pool(d, mk), pool(d.abs(), mk), pool(c, mk), pool(c, 1 - mk), mk.mean((1, 2, 3))[:, None],
                 pool(d2, mk), pool(d2.abs(), mk), along[:, None], size2[:, None]]
            feats.append(torch.cat(f, 1).numpy()); abc.append(torch.stack([A, B, C], 1).numpy())
            print(i, flush=True)
    np.savez(out, f=np.concatenate(feats), abc=np.concatenate(abc), names=np.array(names))

# layout: chg 6 (change, |change|) | col 6 | m 1 | second 6 (change, |change|) | ratio 2 (along, size)
groups = {'chg': range(0, 6), 'col': range(6, 12), 'm': range(12, 13), 'second': range(13, 19), 'ratio': range(19, 21)}

def fit(fit_path, tune_path):
    tr, te = np.load(fit_path), np.load(tune_path)
    def run(names, wd=1e-3, floor=100):
        idx = [i for n in names for i in groups[n]]
        x = torch.tensor(tr['f'][:, idx]).double(); mu, sd = x.mean(0), x.std(0) + 1e-6
        x = (x - mu) / sd; xt = (torch.tensor(te['f'][:, idx]).double() - mu) / sd
        A, B, C = torch.tensor(tr['abc']).double().T
        w = torch.zeros(len(idx), dtype=torch.float64, requires_grad=True)
        b = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=1e-2)
        for _ in range(1500):
            g = torch.sigmoid(x @ w + b)
            loss = ((A - 2 * g * B + g * g * C) / (A + floor)).mean() + wd * (w * w).sum()
            opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            g = torch.sigmoid(xt @ w + b); A, B, C = torch.tensor(te['abc']).double().T
            rows = []
            for tau in [k / 20 for k in range(0, 20)]:
                gg = torch.where(g < tau, torch.zeros_like(g), g)
                res = A - 2 * gg * B + gg * gg * C
                lo = A < 300
                rows.append((tau, (res.mean() / A.mean()).item(), (res > A + 1e-9).double().mean().item() * 100,
                             (res[lo].mean() / A[lo].mean()).item(), (gg == 0).sum().item()))
            ok = [r for r in rows if r[2] <= 20]
            best = min(ok, key=lambda r: r[1]) if ok else None
            print(f"{'+'.join(names):26s} wd {wd:<6} chosen (<= 20 % worse): " +
                  (f"t {best[0]:.2f} {best[1]:.3f}x {best[2]:4.1f} % worse, < 300 {best[3]:.2f}x, closed {best[4]}" if best else "none"))
            for r in rows[::2]: print(f"    t {r[0]:.2f}: {r[1]:.3f}x {r[2]:4.1f} % < 300 {r[3]:.2f}x closed {r[4]}")
    A, B, C = torch.tensor(te['abc']).double().T
    lo = A < 300
    print(f"no gate: {((A - 2 * B + C).mean() / A.mean()).item():.3f}x, {((A - 2 * B + C) > A).double().mean().item() * 100:.1f} % worse, "
          f"< 300 {((A - 2 * B + C)[lo].mean() / A[lo].mean()).item():.2f}x ({lo.sum().item()} images)")
    for names in (['chg', 'col', 'm'], ['chg', 'col', 'm', 'second'], ['chg', 'col', 'm', 'second', 'ratio'], ['ratio'], ['chg', 'ratio']):
        for wd in (1e-3, 1e-2):
            run(names, wd)

if __name__ == '__main__':
    if sys.argv[1] == '--fit': fit(sys.argv[2], sys.argv[3])
    else: features(*sys.argv[1:5])
