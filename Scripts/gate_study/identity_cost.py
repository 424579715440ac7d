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
from second_pass import load_batch, load_network, masked_mean, one_network_sums, split_names  # beside this script


def identity_cost(model_path, root, names):
    network = load_network(model_path)
    costs, moves = [], []
    with torch.no_grad():
        for i in range(0, len(names), 16):
            composite, mask, real = load_batch(root, names[i:i + 16])
            change = (network(composite, mask, {}).clamp(0, 1) - composite) * 255
            costs.append(one_network_sums(composite, mask, real, change)[:, 3].numpy())  # |change|^2 in the mask
            moves.append(masked_mean(change, mask).norm(dim=1).numpy())
    return np.concatenate(costs), np.concatenate(moves)


if __name__ == '__main__':
    root, split = sys.argv[1:3]
    names = split_names(root, split)
    print(f"{len(names)} real photos of {root} ({split}) given as their own composites")
    for model_path in sys.argv[3:]:
        cost, move = identity_cost(model_path, root, names)
        print(f"{model_path}: fMSE mean {cost.mean():7.1f}, median {np.median(cost):6.1f}, "
              f"mean colour change {move.mean():5.1f} levels", flush=True)
