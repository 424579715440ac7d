"""Issue 25 study: is the network's change on a nearly right composite a property of the photo?
On a draw with many composites per photo (data/HGComprisTune30: 30 of each of the 44 tuning photos),
the composites of one photo differ only in the foreground change the synthesizer made. If the
network's mean colour change on the composites below 300 fMSE (where it should change almost
nothing) is mostly the same for all composites of a photo, the network moves that object toward the
colour it believes the object has, whatever the composite: a content prior, which no gate on this
image can tell from a real correction. Prints, from the .npz of deep.py on such a draw: the ratio
to the composite of the ungated network on the band, the share of the variance of the mean change
(3 channels, 255 scale) explained by the photo, on the band and on all composites, whether the change
points from the foreground's mean colour toward the background's, and the photos whose band
composites the change harms most.
Usage: .venv-ref/bin/python Scripts/gate_study/content_bias.py EVAL_DEEP.npz [MORE.npz ...]
"""
import sys, collections, numpy as np


def report(path):
    data = np.load(path)
    sums, change, names = data['sums'], data['f'][:, 0:3], data['names']
    photo = np.array([str(n).rsplit('_', 2)[0] for n in names])
    composite, along, size = sums[:, 0], sums[:, 1], sums[:, 3]
    excess = size - 2 * along  # fMSE of the whole change minus the composite's
    low = composite < 300
    print(f"== {path}: {len(names)} composites of {len(set(photo))} photos, {low.sum()} below 300")
    print(f"ungated ratio to the composite: all {(composite + excess).mean() / composite.mean():.3f}x, "
          f"below 300 {(composite[low] + excess[low]).mean() / composite[low].mean():.2f}x")
    for label, chosen in (('below 300', low), ('all', np.ones_like(low))):
        x, p = change[chosen], photo[chosen]
        total = ((x - x.mean(0)) ** 2).sum(1).mean()
        groups = [x[p == q] for q in set(p) if (p == q).sum() > 1]
        within = sum(((g - g.mean(0)) ** 2).sum() for g in groups) / sum(len(g) for g in groups)
        print(f"mean colour change, {label:9s}: spread {total ** 0.5:5.1f} levels, share explained by the photo "
              f"{1 - within / total:.2f}")
    # does the change point from the foreground's mean colour toward the background's?
    toward = (data['f'][:, 9:12] - data['f'][:, 6:9]) * 255
    cosine = (change * toward).sum(1) / (np.linalg.norm(change, axis=1) * np.linalg.norm(toward, axis=1) + 1e-9)
    print(f"cosine of the mean change with (background - foreground) mean colour: below 300 {cosine[low].mean():+.2f}, "
          f"all {cosine.mean():+.2f}")
    by_photo = collections.defaultdict(float)
    for q, e in zip(photo[low], excess[low]): by_photo[q] += e
    harm = sum(by_photo.values())
    ranked = sorted(by_photo.items(), key=lambda item: -item[1])
    top = sum(e for _, e in ranked[:5])
    print(f"band harm (sum of fMSE above the composite's): {harm:.0f}; the 5 worst photos {top / harm:.0%}: "
          + ", ".join(f"{q} {e:.0f}" for q, e in ranked[:5]))


if __name__ == '__main__':
    for path in sys.argv[1:]: report(path)
