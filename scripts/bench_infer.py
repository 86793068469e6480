#!/usr/bin/python3
"""torchvision's side of scripts/bench_vs_torchvision.sh (issue 12), and its shared steps.

  bench_infer.py weights OUT.pt IMAGE
      retinanet_resnet50_fpn's layout (91 classes) with seeded random weights made to give real
      detections on IMAGE (random BN statistics, head rescaled so scores spread over (0, 1), as
      tests/model/oracle.py does), exported for focaldet (scripts/export_torchvision_weights.py).
  bench_infer.py infer --weights W.pt --image IMAGE --min-size 480 --max-size 640
                       [--threads 2] [--warm 2] [--reps 5] [--dets OUT.txt] [--profile N]
      torchvision 0.14's RetinaNet in eval mode, built as retinanet_resnet50_fpn builds it for
      pretrained weights (FrozenBatchNorm2d), W.pt loaded; times model([image]) (its transform:
      normalise, resize, pad; backbone, FPN, head, anchors, postprocess_detections, boxes back to
      the original size) on the decoded float image. Prints "run i: S s" and
      "median_img_per_s=X"; --dets writes the last run's detections ("label score x1 y1 x2 y2");
      --profile N prints torch.profiler's N costliest ops (self CPU) of one extra pass.
  bench_infer.py train --focaldet BIN [--warm 2] [--timed 5] [--threads 2]
      scripts/bench_train.py's workload (R50-FPN, BCCD at 512 px, batch 2, SGD) on both sides,
      reporting the median step instead of the mean: "train_focaldet_img_per_s=X" and
      "train_torchvision_img_per_s=Y", then each side's peak resident memory (ru_maxrss of its
      process) as "train_focaldet_peak_rss_mb=" and "train_torchvision_peak_rss_mb=".
  bench_infer.py compare FOCALDET.txt TORCHVISION.txt [--top 10]
      The detections of one image from both sides: same count, and the top ones with the same
      labels, scores within 1e-4 and boxes within 0.01 px. Exit status 1 when they differ.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "model"))

NUM_CLASSES = 91


def read_image(path):
    from torchvision.io import read_image as tv_read
    return tv_read(path).float() / 255


def cmd_weights(a):
    import torch
    from torchvision.models.detection import retinanet_resnet50_fpn
    from export_torchvision_weights import export_state_dict
    from oracle import randomize
    torch.manual_seed(0)
    model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    randomize(model)
    model.eval()
    with torch.no_grad():
        images, _ = model.transform([read_image(a.image)])
        model.head.classification_head.cls_logits.bias.fill_(-4.59511985)
        out = model.head(list(model.backbone(images.tensors).values()))
        # As oracle.py, but closer to a trained detector: the class bias at the paper's prior
        # (0.01) and logits spread with std 1 around it, so ~5% of (anchor, class) scores pass
        # the 0.05 threshold (every level still fills its top 1000 and NMS has work); box
        # deltas std ~0.3 (boxes near their anchors).
        cls_conv = model.head.classification_head.cls_logits
        cls_conv.bias.fill_(-4.59511985)
        cls_conv.weight.mul_(1.0 / (out["cls_logits"] - cls_conv.bias.mean()).std())
        model.head.regression_head.bbox_reg.weight.mul_(0.3 / out["bbox_regression"].std())
    sd = export_state_dict(model.state_dict(), a.out)
    print("wrote %d tensors to %s" % (len(sd), a.out))


def build_torchvision(weights, min_size, max_size):
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, num_classes=NUM_CLASSES, min_size=min_size, max_size=max_size)
    sd = {k: v for k, v in torch.load(weights).items() if not k.endswith("num_batches_tracked")}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def median_run(fn, warm, reps):
    for _ in range(warm):
        out = fn()
    runs = []
    for i in range(reps):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
        print("run %d: %.3f s, %d detections" % (i + 1, runs[-1], len(out[0]["scores"])))
    return statistics.median(runs), out


def cmd_infer(a):
    import torch
    torch.set_num_threads(a.threads)
    model = build_torchvision(a.weights, a.min_size, a.max_size)
    image = read_image(a.image)
    with torch.no_grad():
        med, out = median_run(lambda: model([image]), a.warm, a.reps)
        if a.dets:
            d = out[0]
            with open(a.dets, "w") as f:
                for lab, s, b in zip(d["labels"].tolist(), d["scores"].tolist(), d["boxes"].tolist()):
                    f.write("%d %.7g %.7g %.7g %.7g %.7g\n" % (lab, s, *b))
        if a.profile:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model([image])
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.profile))
    print("median_img_per_s=%.4f" % (1.0 / med))


def torchvision_train_steps(warm, timed, threads):
    import torch
    from bench_train import load_bccd
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d
    # As scripts/bench_train.py's torchvision_img_per_s, keeping each step's time.
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, num_classes=3, min_size=512, max_size=683)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001,
                          momentum=0.9, weight_decay=1e-4)
    batch = 2
    data = load_bccd((warm + timed) * batch)
    seconds = []
    for step in range(warm + timed):
        chunk = data[step * batch:(step + 1) * batch]
        t0 = time.perf_counter()
        loss = sum(model([c[0] for c in chunk], [c[1] for c in chunk]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - t0)
        print("  torchvision train step %d: %.2f s%s" % (step + 1, seconds[-1],
              "" if step >= warm else " (warm-up)"))
    import resource
    # Peak resident memory of this process (ru_maxrss, KiB): the model, its steps and the
    # decoded images; focaldet's side ran as a child process, which RUSAGE_SELF leaves out.
    return [batch / s for s in seconds[warm:]], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def focaldet_train_steps(binary, warm, timed):
    # As scripts/bench_train.py's focaldet_img_per_s (configs/bench_r50_512.yaml, one
    # metrics line per step), keeping each step's img/s.
    config = os.path.join(ROOT, "configs", "bench_r50_512.yaml")
    with tempfile.TemporaryDirectory(prefix="focaldet-bench-vs-tv") as run_dir:
        cmd = [binary, "train", config, "--run-dir", run_dir, "--overwrite",
               "--set", "train.max_iters=%d" % (warm + timed), "--set", "train.log_every=1",
               "--set", "train.batch_size=2"]
        print("  " + " ".join(cmd))
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    if len(lines) != warm + timed:
        raise SystemExit("focaldet: expected %d metrics lines, got %d" % (warm + timed, len(lines)))
    steps = [s["img_per_s"] for s in lines[warm:]]
    peak_mb = max(s["peak_mem_mb"] for s in lines)  # the process's ru_maxrss
    for i, s in enumerate(lines):
        print("  focaldet train step %d: %.2f s%s" % (i + 1, 2 / s["img_per_s"],
              "" if i >= warm else " (warm-up)"))
    return steps, peak_mb


def cmd_train(a):
    ours, our_peak = focaldet_train_steps(a.focaldet, a.warm, a.timed)
    theirs, their_peak = torchvision_train_steps(a.warm, a.timed, a.threads)
    print("train_focaldet_img_per_s=%.4f" % statistics.median(ours))
    print("train_torchvision_img_per_s=%.4f" % statistics.median(theirs))
    print("train_focaldet_peak_rss_mb=%.0f" % our_peak)
    print("train_torchvision_peak_rss_mb=%.0f" % their_peak)


def read_dets(path):
    rows = []
    with open(path) as f:
        for line in f:
            v = line.split()
            rows.append((int(v[0]), float(v[1]), [float(x) for x in v[2:6]]))
    return rows


def cmd_compare(a):
    ours, theirs = read_dets(a.focaldet), read_dets(a.torchvision)
    ok = len(ours) == len(theirs)
    print("detections: focaldet %d, torchvision %d" % (len(ours), len(theirs)))
    top = min(a.top, len(ours), len(theirs))
    max_ds = max_db = 0.0
    for i in range(top):
        (lo, so, bo), (lt, st, bt) = ours[i], theirs[i]
        ds = abs(so - st)
        db = max(abs(x - y) for x, y in zip(bo, bt))
        max_ds, max_db = max(max_ds, ds), max(max_db, db)
        same = lo == lt and ds <= 1e-4 and db <= 1e-2
        ok &= same
        if i < 3 or not same:
            print("  #%d focaldet: %d %.5f [%.2f %.2f %.2f %.2f]  torchvision: %d %.5f "
                  "[%.2f %.2f %.2f %.2f]%s" % (i + 1, lo, so, *bo, lt, st, *bt,
                                              "" if same else "  <- differs"))
    print("top %d: max |score diff| %.2e, max |box diff| %.2e px (tolerance 1e-4, 1e-2)"
          % (top, max_ds, max_db))
    print("detections_agree=%s" % ("yes" if ok and top > 0 else "no"))
    return 0 if ok and top > 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights")
    w.add_argument("out")
    w.add_argument("image")
    i = sub.add_parser("infer")
    i.add_argument("--weights", required=True)
    i.add_argument("--image", required=True)
    i.add_argument("--min-size", type=int, required=True)
    i.add_argument("--max-size", type=int, required=True)
    i.add_argument("--threads", type=int, default=2)
    i.add_argument("--warm", type=int, default=2)
    i.add_argument("--reps", type=int, default=5)
    i.add_argument("--dets")
    i.add_argument("--profile", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("--focaldet", required=True)
    t.add_argument("--warm", type=int, default=2)
    t.add_argument("--timed", type=int, default=5)
    t.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("focaldet")
    c.add_argument("torchvision")
    c.add_argument("--top", type=int, default=10)
    a = p.parse_args()
    sys.exit({"weights": cmd_weights, "infer": cmd_infer, "train": cmd_train,
              "compare": cmd_compare}[a.cmd](a) or 0)


if __name__ == "__main__":
    main()
