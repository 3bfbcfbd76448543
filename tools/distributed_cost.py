#!/usr/bin/python3
"""The data-parallel cost model of docs/distributed.md: predicted scaling efficiency of ring all-reduce training.

    /usr/bin/python3 tools/distributed_cost.py

Per step, each machine computes its batch in T_c = batch / rate (rate: samples/s of one 2-core machine, measured with
`backprop train`) and then all-reduces the gradients: T_ar = 2(p-1)*alpha + 2(p-1)/p * bytes / bandwidth (a ring:
p-1 reduce-scatter and p-1 all-gather rounds, each moving 1/p of the gradients). Backprop does not overlap the
all-reduce with the backward pass, so efficiency = T_c / (T_c + T_ar).
"""

MODELS = {
    # name: (gradient bytes, samples/s of one 2-core Zen 4 machine, batch per machine)
    "W2 MLP 784-1024-1024-10": (1_863_690 * 4, 10_300, 128),
    "cifar10-cnn (64-128-256, BN)": (412_234 * 4, 497, 256),
}
NETWORKS = {"10 Gb/s": 1.25e9, "25 Gb/s": 3.125e9, "100 Gb/s": 12.5e9}
ALPHA = 30e-6   # seconds per message over TCP on Ethernet (RDMA: about 5e-6)
MACHINES = [2, 4, 8, 16, 32, 64]

for name, (size, rate, batch) in MODELS.items():
    compute = batch / rate
    print(f"\n{name}: {size / 1e6:.2f} MB of gradients, T_c = {compute * 1e3:.1f} ms per step (batch {batch} per machine)")
    print("| machines | " + " | ".join(NETWORKS) + " |")
    print("|---:|" + "---:|" * len(NETWORKS))
    for p in MACHINES:
        cells = []
        for bandwidth in NETWORKS.values():
            t = 2 * (p - 1) * ALPHA + 2 * (p - 1) / p * size / bandwidth
            cells.append(f"{compute / (compute + t) * 100:.0f}% ({t * 1e3:.1f} ms)")
        print(f"| {p} | " + " | ".join(cells) + " |")
