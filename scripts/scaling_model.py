#!/usr/bin/env python3
"""Projected data-parallel efficiency of focaldet training (docs/distributed.md).

A ring all-reduce of S bytes over W ranks moves 2 (W-1)/W * S bytes through each rank's link
and takes 2 (W-1) steps per bucket. With n buckets, per-step latency a and link bandwidth B:

    T_comm(W) = 2 (W-1)/W * S / B + 2 (W-1) * n * a

Buckets start during backward (dist.overlap): the first is ready after about 1/n of the
backward pass, so at most the rest of backward, (1 - 1/n) * T_backward, hides communication:

    exposed(W) = max(T_comm / n, T_comm - (1 - 1/n) * T_backward)
    efficiency(W) = T_step / (T_step + exposed(W))

The inputs default to what was measured on the 2-core reference machine (Gloo over loopback,
bench/allreduce_bench.cpp, and the R50-FPN step of docs/benchmarks.md); pass others to see
another machine. Prints a markdown table. Usage:

    scripts/scaling_model.py [--loopback-seconds 0.082] [--one-mb-seconds 0.139] ...
"""
import argparse


def ring_seconds(world, size_bytes, bandwidth, buckets, step_latency):
    if world <= 1:
        return 0.0
    return 2 * (world - 1) / world * size_bytes / bandwidth + 2 * (world - 1) * buckets * step_latency


def exposed_seconds(comm, backward, buckets):
    return max(comm / buckets, comm - (1 - 1 / buckets) * backward)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gradient-floats", type=float, default=36.0e6, help="R50-FPN's gradient")
    p.add_argument("--loopback-seconds", type=float, default=0.082,
                   help="measured: 2 ranks, 25 MB buckets, all-reduce of the whole gradient")
    p.add_argument("--loopback-buckets", type=int, default=6)
    p.add_argument("--one-mb-seconds", type=float, default=0.139,
                   help="measured: the same in 1 MB buckets")
    p.add_argument("--one-mb-buckets", type=int, default=138)
    p.add_argument("--buckets", type=int, default=6, help="25 MB buckets of the gradient")
    p.add_argument("--cpu-step", type=float, default=2.65,
                   help="measured: R50-FPN 512 px batch 2 training step on 2 cores (s)")
    p.add_argument("--cpu-backward", type=float, default=1.2, help="of which backward (s)")
    p.add_argument("--gpu-step", type=float, default=0.20,
                   help="assumed: one GPU's R50-FPN step at batch 2 (s), not measured here")
    p.add_argument("--gpu-backward", type=float, default=0.13, help="assumed: of which backward")
    p.add_argument("--links", default="1.25,3.125,12.5",
                   help="link bandwidths in GB/s (10 GbE, 25 GbE, 100 Gb/s)")
    p.add_argument("--worlds", default="2,8,64,512")
    a = p.parse_args()

    size = a.gradient_floats * 4
    # Two ranks: 2 (W-1)/W = 1 and 2 (W-1) = 2 steps a bucket. The 1 MB run differs from the
    # 25 MB run only in bucket count, which gives the per-step latency; the rest is bandwidth.
    latency = (a.one_mb_seconds - a.loopback_seconds) / (2 * (a.one_mb_buckets - a.loopback_buckets))
    loopback_bw = size / (a.loopback_seconds - 2 * a.loopback_buckets * latency)
    print(f"inputs: gradient {size / 1e6:.0f} MB; per ring step latency {latency * 1e3:.2f} ms; "
          f"loopback bandwidth {loopback_bw / 1e9:.2f} GB/s (from the 2-rank measurements)\n")

    worlds = [int(w) for w in a.worlds.split(",")]
    links = [float(x) * 1e9 for x in a.links.split(",")]
    print("| link | workers | all-reduce (s) | exposed, CPU step (s) | efficiency, CPU step "
          "| exposed, GPU step (s) | efficiency, GPU step |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for bw in links:
        for w in worlds:
            comm = ring_seconds(w, size, bw, a.buckets, latency)
            cpu = exposed_seconds(comm, a.cpu_backward, a.buckets)
            gpu = exposed_seconds(comm, a.gpu_backward, a.buckets)
            print(f"| {bw * 8 / 1e9:.0f} Gb/s | {w} | {comm:.3f} | {cpu:.3f} | "
                  f"{a.cpu_step / (a.cpu_step + cpu):.0%} | {gpu:.3f} | "
                  f"{a.gpu_step / (a.gpu_step + gpu):.0%} |")


if __name__ == "__main__":
    main()
