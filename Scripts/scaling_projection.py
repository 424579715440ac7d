#!/usr/bin/env python3
"""Projects data-parallel training to N ranks from numbers measured on one machine (docs/scaling.md).

    python3 Scripts/scaling_projection.py

Inputs (edit RATES / BYTES to your measurements; Scripts/scaling_bench.sh prints both): training
images/s of one 2-core rank per preset, and the gradient allreduce size. The allreduce is modelled
as a ring: time = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency, not overlapped with
compute (our trainer allreduces after the backward pass). Prints the share of a step spent
communicating for a per-rank batch of 8 (weak scaling) and for a global batch of 64 split over
the ranks (strong scaling), the rank count where it passes 20 %, and the ranks needed to train on
iHarmony4 for 120 epochs in a day.
"""
RATES = {"tiny": 6.41, "small": 2.75, "paper": 1.01}  # images/s, 1 rank x 2 threads, 256 px, batch 8
BYTES = {"tiny": 4.36e6, "small": 17.24e6, "paper": 74.93e6}  # float32 gradients (+ the loss)
NETWORKS = {"10 Gbit/s": 10e9 / 8, "25 Gbit/s": 25e9 / 8}
LATENCY = 50e-6  # per ring step, TCP over Ethernet (Open MPI's tcp transport); InfiniBand is ~2 us
RANKS = [8, 32, 128]
IHARMONY4_IMAGES = 65_742 * 120


def allreduce_seconds(ranks, size, bandwidth):
    return 2 * (ranks - 1) / ranks * size / bandwidth + 2 * (ranks - 1) * LATENCY


def communication_share(preset, ranks, per_rank_batch, bandwidth):
    compute = per_rank_batch / RATES[preset]
    communicate = allreduce_seconds(ranks, BYTES[preset], bandwidth)
    return communicate / (compute + communicate)


def first_rank_over(preset, bandwidth, per_rank_batch_of, threshold=0.2):
    for ranks in range(2, 100_001):
        batch = per_rank_batch_of(ranks)
        if batch <= 0:
            return None
        if communication_share(preset, ranks, batch, bandwidth) > threshold:
            return ranks
    return None


def main():
    for scaling, per_rank, ranks_shown in (
        ("per-rank batch 8", lambda n: 8, RANKS),
        ("global batch 64 (at most 64 ranks: one image each)", lambda n: 64 / n if n <= 64 else 0, [8, 32, 64]),
    ):
        print(f"\n{scaling}: communication share of a step")
        print("| preset | network | " + " | ".join(f"{n} ranks" for n in ranks_shown) + " | > 20 % from |")
        print("|---|---|" + "---|" * len(ranks_shown) + "---|")
        for preset in RATES:
            for name, bandwidth in NETWORKS.items():
                shares = [communication_share(preset, n, per_rank(n), bandwidth) for n in ranks_shown]
                limit = first_rank_over(preset, bandwidth, per_rank)
                cells = " | ".join(f"{100 * share:.1f} %" for share in shares)
                print(f"| {preset} | {name} | {cells} | {f'{limit} ranks' if limit else 'never'} |")
    print("\niHarmony4, 120 epochs (7.89 M images) in 24 h: 91.3 images/s")
    for preset, rate in RATES.items():
        for name, bandwidth in NETWORKS.items():
            ranks = 1
            while True:
                step = 8 / rate + allreduce_seconds(ranks, BYTES[preset], bandwidth) if ranks > 1 else 8 / rate
                if ranks * 8 / step * 86_400 >= IHARMONY4_IMAGES:
                    break
                ranks += 1
            print(f"  {preset}, {name}: {ranks} ranks of 2 cores (global batch {8 * ranks} at 8 per rank)")


if __name__ == "__main__":
    main()
