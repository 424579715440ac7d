"""Issue 25 study: is the change a network makes to a perfect composite a pull of the foreground's
colour toward the mean foreground colour of its training composites? A synthesizer that adds a
random change to each real foreground makes extreme composite colours more often the work of the
change than of the photo, so the MSE-best guess from the colour alone pulls every foreground toward
the mean, by the slope of (real - composite) on (composite - mean) over the training composites.
Mode `data`: that slope per channel (foreground mean colours, 256 px, inside the mask) and the spread
of the composites' and reals' foreground colours of a set.
Mode `network`: on the perfect composites of identity_set.py, the slope of each network's mean
colour change on (foreground colour - the set's mean foreground colour), the cosine of the two, and
the foreground's chroma before and after.
Usage: .venv-ref/bin/python Scripts/gate_study/shrinkage.py data DATASET_ROOT SPLIT
       .venv-ref/bin/python Scripts/gate_study/shrinkage.py network IDENTITY_ROOT SPLIT MODEL [MODEL ...]
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import load_batch, load_network, masked_mean, split_names  # beside this script


def foreground_colours(root, names, network=None):
    """Per image the mean colour inside the mask (0-255) of the composite, of the real image and,
    with a network, of its output."""
    composites, reals, outputs = [], [], []
    with torch.no_grad():
        for i in range(0, len(names), 16):
            c, mask, real = load_batch(root, names[i:i + 16])
            composites.append(masked_mean(c, mask) * 255)
            reals.append(masked_mean(real, mask) * 255)
            if network is not None:
                outputs.append(masked_mean(network(c, mask, {}).clamp(0, 1), mask) * 255)
    join = lambda xs: torch.cat(xs).double().numpy() if xs else None
    return join(composites), join(reals), join(outputs)


def chroma(colours):
    """Distance of each colour from the grey axis."""
    return np.linalg.norm(colours - colours.mean(1, keepdims=True), axis=1)


def slopes(x, y):
    """Per channel, the least-squares slope of y on x."""
    return [np.polyfit(x[:, k], y[:, k], 1)[0] for k in range(3)]


def data_mode(root, split):
    names = split_names(root, split)
    composite, real, _ = foreground_colours(root, names)
    print(f"{len(names)} composites of {root} ({split})")
    print(f"foreground mean colour, spread (std over images, R G B): composites {np.round(composite.std(0), 1)}, "
          f"reals {np.round(real.std(0), 1)}")
    print("slope of (real - composite) on (composite - mean composite), R G B: "
          + " ".join(f"{s:+.3f}" for s in slopes(composite - composite.mean(0), real - composite)))


def network_mode(root, split, models):
    names = split_names(root, split)
    print(f"{len(names)} real photos of {root} ({split}) given as their own composites")
    for path in models:
        composite, _, output = foreground_colours(root, names, load_network(path))
        away, change = composite - composite.mean(0), output - composite
        cosine = (away * change).sum(1) / (np.linalg.norm(away, axis=1) * np.linalg.norm(change, axis=1) + 1e-9)
        # the part of the fMSE the mean colour change alone would cost, and what of it a per-channel
        # line in (colour - mean colour) leaves unexplained
        fitted = np.stack([np.polyval(np.polyfit(away[:, k], change[:, k], 1), away[:, k]) for k in range(3)], 1)
        print(f"{path}: slope of the change on (colour - mean colour), R G B: "
              + " ".join(f"{s:+.3f}" for s in slopes(away, change))
              + f"; cosine mean {cosine.mean():+.2f}, median {np.median(cosine):+.2f}; "
              f"chroma {chroma(composite).mean():.1f} -> {chroma(output).mean():.1f}; "
              f"mean-colour cost {(change ** 2).mean():.1f}, left by the line {((change - fitted) ** 2).mean():.1f}",
              flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'data': data_mode(sys.argv[2], sys.argv[3])
    else: network_mode(sys.argv[2], sys.argv[3], sys.argv[4:])
