"""Issue 25 study: what does the network do to a composite that is exactly right? On a set of
perfect composites (Scripts/identity_set.py: each photo given as its own composite, the real image
with its object mask, fMSE 0) any change is harm: the network's own idea of the object's colour
against the real one. Prints per network the mean fMSE of that result (the cost of harmonizing a
perfect composite, the network's output as it is, without a gate), its median and the mean colour
change inside the mask.
Usage: python3 Scripts/identity_set.py SOURCE_ROOT SPLIT IDENTITY_ROOT, then
       .venv-ref/bin/python Scripts/gate_study/identity_cost.py IDENTITY_ROOT SPLIT MODEL [MODEL ...]
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import load_batch, load_network, masked_mean, split_names  # beside this script


def changes_of(model_path, root, names):
    """The network's change (255 scale) on every composite of `names`, N x 3 x H x W, and the masks."""
    network = load_network(model_path)
    changes, masks = [], []
    with torch.no_grad():
        for i in range(0, len(names), 16):
            composite, mask, _ = load_batch(root, names[i:i + 16])
            changes.append((network(composite, mask, {}).clamp(0, 1) - composite) * 255)
            masks.append(mask)
    return torch.cat(changes), torch.cat(masks)


def perfect_composite_cost(change, mask):
    """Per image the fMSE of composite + change where the composite is the real image: |change|^2
    inside the mask over the mask's area (at least 100 pixels) and 3 channels, as one_network_sums."""
    return (change ** 2 * mask).sum((1, 2, 3)) / (mask.sum((1, 2, 3)).clamp_min(100) * 3)


def identity_cost(model_path, root, names):
    """Per perfect composite the fMSE of the network's result and the size of its mean colour change."""
    change, mask = changes_of(model_path, root, names)
    return perfect_composite_cost(change, mask).numpy(), masked_mean(change, mask).norm(dim=1).numpy()


if __name__ == '__main__':
    root, split = sys.argv[1:3]
    names = split_names(root, split)
    print(f"{len(names)} real photos of {root} ({split}) given as their own composites")
    for model_path in sys.argv[3:]:
        cost, move = identity_cost(model_path, root, names)
        print(f"{model_path}: fMSE mean {cost.mean():7.1f}, median {np.median(cost):6.1f}, "
              f"mean colour change {move.mean():5.1f} levels", flush=True)
