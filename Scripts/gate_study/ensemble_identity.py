"""Issue 25 study: is the change a network makes to a perfect composite its own, or shared by the
networks trained on our data? On the perfect composites of identity_set.py, the cost (mean fMSE
inside the mask) of every network's change and of the mean change of every subset of the networks
(an ensemble). Changes that were independent would average out: k networks of equal cost would
leave about 1/k of it; changes the networks share would not.
Usage: .venv-ref/bin/python Scripts/gate_study/ensemble_identity.py IDENTITY_ROOT SPLIT MODEL MODEL [MODEL ...]
"""
import sys, itertools, torch
sys.path.insert(0, 'Scripts/reference')
torch.set_num_threads(2)
from second_pass import split_names  # beside this script
from identity_cost import changes_of, perfect_composite_cost  # beside this script


if __name__ == '__main__':
    root, split, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    names = split_names(root, split)
    print(f"{len(names)} real photos of {root} ({split}) given as their own composites")
    changes = []
    for model_path in models:
        change, mask = changes_of(model_path, root, names)
        changes.append(change)
    for k, path in enumerate(models):
        print(f"network {k}: {path}")
    for size in range(1, len(models) + 1):
        for subset in itertools.combinations(range(len(models)), size):
            mean_change = sum(changes[k] for k in subset) / size
            cost = perfect_composite_cost(mean_change, mask).mean().item()
            print(f"mean of networks {', '.join(map(str, subset)):12s}: fMSE {cost:6.1f}")
