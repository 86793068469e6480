#!/usr/bin/python3
"""Training speed of RetinaNet R50-FPN at 512 px, batch 2: `focaldet train` beside torchvision
0.14's RetinaNet training step (Debian's python3-torchvision, the same LibTorch 1.13), one after
the other on the same machine, the same BCCD images (data/bccd) and the same thread count.

  scripts/bench_train.py [--focaldet build/src/cli/focaldet] [--warm 3] [--timed 10]
                         [--threads 2] [--only focaldet|torchvision]

Both sides: the model torchvision's retinanet_resnet50_fpn builds for pretrained weights
(frozen BN, layer2..layer4 trainable, FPN P3-P7 with P6 from P5, 4 x 256 head, default anchors),
random init, 3 classes; images resized to a 512 px short side (683 px at most: 640 x 480 BCCD
images become 512 x 683) and padded to multiples of 32; SGD (lr 0.001, no warmup, momentum 0.9, weight
decay 1e-4); --warm untimed steps, then --timed timed ones. Both report images / summed step
seconds over the timed steps.

- torchvision: the images are decoded once before timing; a step is model(images, targets)
  (its GeneralizedRCNNTransform resize/normalise/pad, backbone, head, anchors, matching,
  compute_loss), backward, optimizer step. (retinanet_resnet50_fpn(weights=None,
  weights_backbone=None) would silently switch to trainable BatchNorm everywhere, so the model
  is built as it builds it with weights: resnet50 with FrozenBatchNorm2d, _resnet_fpn_extractor
  with 3 trainable layers.)
- focaldet: `focaldet train configs/bench_r50_512.yaml` with train.max_iters = warm + timed and
  a metrics.jsonl line per step; a step as timed there also includes waiting for the loader
  (decoding and resizing, on the training thread: data.num_workers is 0), so the comparison leans against focaldet.

Takes ~1 minute per 10 steps per side on the 2-core reference machine when it is quiet; on a
loaded machine both sides slow down unevenly: compare only figures from one quiet run.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BCCD = os.path.join(ROOT, "data", "bccd")


def load_bccd(count):
    """The first `count` trainval images (by id, repeated if needed) as float [3, H, W] in
    [0, 1] with their targets (boxes x1 y1 x2 y2, labels = category id - 1)."""
    import torch
    from torchvision.io import read_image
    with open(os.path.join(BCCD, "coco", "instances_trainval.json")) as f:
        coco = json.load(f)
    anns = {}
    for a in coco["annotations"]:
        if a.get("iscrowd", 0) == 0 and a["bbox"][2] > 0 and a["bbox"][3] > 0:
            anns.setdefault(a["image_id"], []).append(a)
    images = sorted((i for i in coco["images"] if i["id"] in anns), key=lambda i: i["id"])
    out = []
    for k in range(count):
        info = images[k % len(images)]
        img = read_image(os.path.join(BCCD, "JPEGImages", info["file_name"])).float() / 255
        a = anns[info["id"]]
        boxes = torch.tensor([[b["bbox"][0], b["bbox"][1], b["bbox"][0] + b["bbox"][2],
                               b["bbox"][1] + b["bbox"][3]] for b in a], dtype=torch.float32)
        labels = torch.tensor([b["category_id"] - 1 for b in a], dtype=torch.int64)
        out.append((img, {"boxes": boxes, "labels": labels}))
    return out


def torchvision_img_per_s(warm, timed, threads, batch):
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, num_classes=3, min_size=512, max_size=683)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
    data = load_bccd((warm + timed) * batch)
    seconds = []
    for step in range(warm + timed):
        chunk = data[step * batch:(step + 1) * batch]
        images, targets = [c[0] for c in chunk], [c[1] for c in chunk]
        t0 = time.perf_counter()
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - t0)
        print("  torchvision step %d: %.2f s, loss %.4f%s" % (step + 1, seconds[-1], loss.item(),
              "" if step >= warm else " (warm-up)"), file=sys.stderr)
    return timed * batch / sum(seconds[warm:])


def focaldet_img_per_s(binary, config, warm, timed):
    with tempfile.TemporaryDirectory(prefix="focaldet-bench-train") as run_dir:
        cmd = [binary, "train", config, "--run-dir", run_dir, "--overwrite",
               "--set", "train.max_iters=%d" % (warm + timed), "--set", "train.log_every=1",
               "--set", "train.batch_size=2"]
        print("  " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, cwd=ROOT)
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    steps = lines[-timed:]
    if len(lines) != warm + timed or len(steps) != timed:
        raise SystemExit("focaldet: expected %d metrics lines, got %d" % (warm + timed, len(lines)))
    # One line per step, img_per_s = batch / step seconds: images over summed seconds (the same
    # mean a single log window over the timed steps would give).
    batch = 2
    return timed * batch / sum(batch / s["img_per_s"] for s in steps)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--focaldet", default=os.path.join(ROOT, "build", "src", "cli", "focaldet"))
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "bench_r50_512.yaml"))
    p.add_argument("--warm", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--timed", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--threads", type=int, default=2,
                   help="torchvision's intra-op threads; focaldet's is run.threads in --config")
    p.add_argument("--only", choices=["focaldet", "torchvision"])
    a = p.parse_args()
    if a.warm < 0 or a.timed < 1:
        raise SystemExit("--warm >= 0 and --timed >= 1")
    print("load average before: %s on %d cores" % (
        " ".join(open("/proc/loadavg").read().split()[:3]), os.cpu_count()))
    ours = theirs = None
    if a.only != "torchvision":
        if not os.access(a.focaldet, os.X_OK):
            raise SystemExit("no %s: build it first (cmake --build build --target focaldet)"
                             % a.focaldet)
        ours = focaldet_img_per_s(a.focaldet, a.config, a.warm, a.timed)
    if a.only != "focaldet":
        theirs = torchvision_img_per_s(a.warm, a.timed, a.threads, batch=2)
    print("load average after: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("| R50-FPN, 512 px, batch 2, %d threads, %d warm + %d timed steps | img/s |"
          % (a.threads, a.warm, a.timed))
    print("|---|---:|")
    if ours is not None:
        print("| focaldet train | %.3f |" % ours)
    if theirs is not None:
        print("| torchvision 0.14 RetinaNet training step | %.3f |" % theirs)
    if ours is not None and theirs is not None:
        print("focaldet / torchvision: %.2fx" % (ours / theirs))


if __name__ == "__main__":
    main()
