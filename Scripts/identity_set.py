"""Makes an iHarmony4-style set whose composites are the real photos themselves (one per photo of
SOURCE's list, with its object mask): every composite is already right, so whatever a model changes
is harm. `gknet evaluate --dataset DEST --model M` then reports what the model does to a perfect
composite (the composite's fMSE is 0, so the table gives the result's fMSE and how many images it
changed). docs/evaluation.md, "A perfect composite".
Usage: python3 Scripts/identity_set.py SOURCE_ROOT SPLIT DEST_ROOT
e.g.   python3 Scripts/identity_set.py data/HGComprisTune30 test data/HGComprisTuneIdentity
"""
import os, shutil, sys

source, split, dest = sys.argv[1:4]
listing = os.path.join(source, f"{os.path.basename(source.rstrip('/'))}_{split}.txt")
name = os.path.basename(dest.rstrip('/'))
for folder in ('composite_images', 'masks', 'real_images'):
    os.makedirs(os.path.join(dest, folder), exist_ok=True)
reals = {os.path.splitext(f)[0]: f for f in os.listdir(os.path.join(source, 'real_images'))}
seen, names = set(), []
with open(listing) as lines:
    for line in lines:
        composite = os.path.basename(line.strip())
        if not composite:
            continue
        parts = os.path.splitext(composite)[0].split('_')  # <photo>_<mask index>_<composite index>
        photo, mask = '_'.join(parts[:-2]), '_'.join(parts[:-1])
        if photo in seen:
            continue
        seen.add(photo)
        real = reals[photo]
        own_composite = f"{mask}_1{os.path.splitext(real)[1]}"
        shutil.copy(os.path.join(source, 'real_images', real), os.path.join(dest, 'real_images', real))
        shutil.copy(os.path.join(source, 'real_images', real), os.path.join(dest, 'composite_images', own_composite))
        shutil.copy(os.path.join(source, 'masks', f"{mask}.png"), os.path.join(dest, 'masks', f"{mask}.png"))
        names.append(own_composite)
with open(os.path.join(dest, f"{name}_{split}.txt"), 'w') as out:
    out.write('\n'.join(names) + '\n')
print(f"{dest}: {len(names)} real photos as their own composites ({split} list)")
