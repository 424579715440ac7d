"""Issue 25 study: does a threshold chosen on the tuning split's 220 composites hold on more
composites of the same photos? Fits the product's gate (13 statistics, deep.py's .npz files) on a
fit set, chooses its threshold by the product's rule with the near-identity limit (lowest mean
with at most 20 % worse and the composites below 300 at most 1.0x their own fMSE) once on the
220 and once on a larger draw (`gknet synthesize --per-photo 30` on the same photos), and scores
each choice on both.
Usage: .venv-ref/bin/python Scripts/gate_study/cross_check.py FIT.npz TUNE.npz TUNE_LARGE.npz
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from two_networks import residual  # beside this script
from frontier import fit_gate  # beside this script (the product's fit, 2,000 steps)


def score(g, s, tau, keep):
    share = torch.where(g < tau, torch.zeros_like(g), g if keep == 'share' else torch.ones_like(g))
    res = residual(s, share, 0); tt = s[:, 0]; low = tt < 300
    return ((res > tt + 1e-9).double().mean().item() * 100, (res.mean() / tt.mean()).item(),
            (res[low].mean() / tt[low].mean()).item())


def choose(g, s, keep, band=1.0):
    rows = [(tau,) + score(g, s, tau, keep) for tau in [k / 20 for k in range(20)]]
    ok = [r for r in rows if r[1] <= 20 and r[3] <= band]
    return min(ok, key=lambda r: r[2])[0] if ok else None


def main(fit_path, tune_path, large_path):
    sets = {'fit': np.load(fit_path), 'tune': np.load(tune_path), 'large': np.load(large_path)}
    sums = {k: torch.tensor(v['sums']).double() for k, v in sets.items()}
    print(f"fit {len(sums['fit'])}, tuning {len(sums['tune'])} ({(sums['tune'][:, 0] < 300).sum().item()} below 300), "
          f"larger draw {len(sums['large'])} ({(sums['large'][:, 0] < 300).sum().item()} below 300)")
    for keep in ('share', 'whole'):
        for wd in (1e-3, 1e-2, 1e-1):
            for floor in (30, 100):
                gate = fit_gate(sets['fit']['f'], sums['fit'], (1.0, 0.0), wd, floor)
                g = {k: gate(sets[k]['f']).detach() for k in ('tune', 'large')}
                for on in ('tune', 'large'):
                    tau = choose(g[on], sums[on], keep)
                    line = f"{keep} wd {wd:<6} floor {floor:<4} chosen on {on:5s}: "
                    if tau is None: print(line + "no threshold meets the rule"); continue
                    line += f"t {tau:.2f} | "
                    for k in ('tune', 'large'):
                        worse, ratio, band = score(g[k], sums[k], tau, keep)
                        line += f"{k}: {ratio:.3f}x, {worse:4.1f} % worse, band {band:.2f}x | "
                    print(line, flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:4])
