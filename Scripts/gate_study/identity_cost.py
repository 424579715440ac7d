"""Issue 25 study: what does the network do to a composite that is exactly right? Each photo of a
set is given to the network as its own composite (the real image with its object mask, fMSE 0), so
any change is harm: the network's own idea of the object's colour against the real one. Prints per
network the mean fMSE of that result (the cost of harmonizing a perfect composite, the network's
output as it is, without a gate), its median and the mean colour change inside the mask.
Usage: .venv-ref/bin/python Scripts/gate_study/identity_cost.py DATASET_ROOT SPLIT MODEL [MODEL ...]
"""
import sys, numpy as np, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import load_batch, load_network, masked_mean, split_names  # beside this script


def one_per_photo(root, split):
    """One composite name per real photo of the split (the real image and its mask are what count)."""
    seen, names = set(), []
    for name in split_names(root, split):
        photo = name.rsplit('_', 1)[0]  # <photo>_<mask index>
        if photo not in seen:
            seen.add(photo); names.append(name)
    return names


def identity_cost(model_path, root, names):
    network = load_network(model_path)
    costs, moves = [], []
    with torch.no_grad():
        for i in range(0, len(names), 16):
            _, mask, real = load_batch(root, names[i:i + 16])
            change = (network(real, mask, {}).clamp(0, 1) - real) * 255
            den = mask.sum((1, 2, 3)).clamp_min(100) * 3
            costs.append(((change * change * mask).sum((1, 2, 3)) / den).numpy())
            moves.append(masked_mean(change, mask).norm(dim=1).numpy())
    return np.concatenate(costs), np.concatenate(moves)


if __name__ == '__main__':
    root, split = sys.argv[1:3]
    names = one_per_photo(root, split)
    print(f"{len(names)} real photos of {root} ({split}) given as their own composites")
    for model_path in sys.argv[3:]:
        cost, move = identity_cost(model_path, root, names)
        print(f"{model_path}: fMSE mean {cost.mean():7.1f}, median {np.median(cost):6.1f}, "
              f"mean colour change {move.mean():5.1f} levels", flush=True)
