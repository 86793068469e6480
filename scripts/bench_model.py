#!/usr/bin/python3
"""RetinaNet R50-FPN at 512x512, batch 2: focaldet (C++, bench/bench_model.cpp) beside
torchvision 0.14 (Debian's python3-torchvision, same LibTorch 1.13) in one run, same threads.

  scripts/bench_model.py [--bench build/bench/focaldet_bench] [--threads 2] [--reps 5]

Both sides: frozen BN, layer2..layer4 trainable (torchvision's retinanet_resnet50_fpn as built
with pretrained weights), 91 classes, 4 x 256 head; forward = backbone + FPN + head under
no_grad in eval mode; forward + backward = the same in train mode, backward from the sum of both
head outputs, gradients zeroed each step. Anchors and post-processing are not timed. Each side
warms up once; the median over --reps runs is printed as a markdown table.
"""
import argparse
import json
import statistics
import subprocess
import time

import torch
from torchvision.models import resnet50
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d


def torchvision_times(threads, reps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, num_classes=91)
    x = torch.randn(2, 3, 512, 512)

    def forward():
        return model.head(list(model.backbone(x).values()))

    def step():
        model.zero_grad()
        out = forward()
        (out["cls_logits"].sum() + out["bbox_regression"].sum()).backward()

    def timed(fn):
        fn()  # warm-up
        runs = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(runs)

    model.eval()
    with torch.no_grad():
        fwd = timed(forward)
    model.train()
    fwd_bwd = timed(step)
    return fwd, fwd_bwd


def focaldet_times(bench, reps):
    out = subprocess.run([bench, "--benchmark_filter=RetinaNet", "--benchmark_format=json",
                          "--benchmark_repetitions=%d" % reps,
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    med = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            med[b["run_name"].split("/")[0]] = b["real_time"]
    return med["BM_RetinaNetR50Forward"], med["BM_RetinaNetR50ForwardBackward"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default="build/bench/focaldet_bench")
    p.add_argument("--threads", type=int, default=2, help="the C++ benchmark is registered for 2")
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    ours = focaldet_times(a.bench, a.reps)
    theirs = torchvision_times(a.threads, a.reps)
    print("| RetinaNet R50-FPN, 2 x 3 x 512 x 512, %d threads | focaldet (ms) | torchvision (ms) | ratio |" % a.threads)
    print("|---|---:|---:|---:|")
    for name, o, t in (("forward (no grad)", ours[0], theirs[0]),
                       ("forward + backward", ours[1], theirs[1])):
        print("| %s | %.0f | %.0f | %.2f |" % (name, o, t, o / t))


if __name__ == "__main__":
    main()
