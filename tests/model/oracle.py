"""Reference values for tests/model from torchvision 0.14 (run by test_model).

usage: oracle.py retinanet OUT_DIR SEED NUM_CLASSES H W
       oracle.py resnet OUT_DIR SEED DEPTH H W
       oracle.py retinanet_v2 OUT_DIR SEED NUM_CLASSES H W   (GroupNorm head, P6 from C5)
  Builds retinanet_resnet50_fpn with seeded random weights (random BN statistics and a head
  whose scores spread over (0, 1), so post-processing has real work), exports its weights with
  scripts/export_torchvision_weights.py, and writes OUT_DIR/ref.pt: the input, P3..P7, head
  outputs, anchors and post-processed detections (a batch of two), computed with torchvision's own pieces on an
  input that its transform does not resize or normalise.
"""
import os
import sys

import torch
from torchvision.models.detection import retinanet_resnet50_fpn
from torchvision.models.detection.image_list import ImageList

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from export_torchvision_weights import export_state_dict  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from oracle_io import save  # noqa: E402


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, torch.nn.GroupNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)


def randomize(model):
    randomize_bn(model)
    cls = model.head.classification_head
    # The default N(0, 0.01) head gives every anchor ~pi = 0.01, below the 0.05 threshold.
    for m in cls.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data.normal_(0, 0.03)
            m.bias.data.normal_(0, 0.1)
    cls.cls_logits.bias.data.normal_(-2.0, 0.5)
    for m in model.head.regression_head.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data.normal_(0, 0.03)


def retinanet(out_dir, seed, num_classes, h, w):
    torch.manual_seed(seed)
    model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes,
                                   score_thresh=0.05, nms_thresh=0.5, detections_per_img=100,
                                   topk_candidates=1000)
    randomize(model)
    model.eval()
    # Two images; the second is "smaller" (h - 28, w - 10) inside the padded batch, so clipping
    # differs between them.
    x = torch.randn(2, 3, h, w)
    image_sizes = [(h, w), (h - 28, w - 10)]
    with torch.no_grad():
        # Rescale the output convs so logits have std ~1.5 around the bias (scores spread over
        # (0, 1) with no saturated ties) and deltas std ~0.3 (boxes near their anchors).
        out = model.head(list(model.backbone(x).values()))
        cls_conv = model.head.classification_head.cls_logits
        cls_conv.weight.mul_(1.5 / (out["cls_logits"] - cls_conv.bias.view(1, 1, -1)[..., :num_classes].mean()).std())
        model.head.regression_head.bbox_reg.weight.mul_(0.3 / out["bbox_regression"].std())
    export_state_dict(model.state_dict(), os.path.join(out_dir, "weights.pt"))
    with torch.no_grad():
        feats = list(model.backbone(x).values())
        head = model.head(feats)
        images = ImageList(x, image_sizes)
        anchors = model.anchor_generator(images, feats)
        # As RetinaNet.forward in eval mode, without its transform.
        per_level = [f.size(2) * f.size(3) * 9 for f in feats]
        split = {k: list(v.split(per_level, dim=1)) for k, v in head.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        dets = model.postprocess_detections(split, split_anchors, images.image_sizes)
    ref = {"input": x, "cls_logits": head["cls_logits"], "bbox_regression": head["bbox_regression"],
           "anchors": anchors[0]}
    for i, det in enumerate(dets):
        for k in ("boxes", "scores", "labels"):
            ref["%s%d" % (k, i)] = det[k]
    for i, f in enumerate(feats):
        ref["p%d" % (i + 3)] = f
    save(ref, os.path.join(out_dir, "ref.pt"))


def resnet(out_dir, seed, depth, h, w):
    """C3..C5 of torchvision's resnet{depth} (BN in eval mode, random statistics), its weights
    exported as an ImageNet backbone would be (backbone.body.*, no fc)."""
    from torchvision import models
    from torchvision.models._utils import IntermediateLayerGetter
    torch.manual_seed(seed)
    model = getattr(models, "resnet%d" % depth)(weights=None)
    randomize_bn(model)
    model.eval()
    export_state_dict(model.state_dict(), os.path.join(out_dir, "weights.pt"),
                      prefix="backbone.body.")
    body = IntermediateLayerGetter(model, {"layer2": "c3", "layer3": "c4", "layer4": "c5"})
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        c = body(x)
    save({"input": x, "c3": c["c3"], "c4": c["c4"], "c5": c["c5"]}, os.path.join(out_dir, "ref.pt"))


def retinanet_v2(out_dir, seed, num_classes, h, w):
    """Head outputs of retinanet_resnet50_fpn_v2's layout (GroupNorm head, P6 from C5)."""
    from torchvision.models.detection import retinanet_resnet50_fpn_v2
    torch.manual_seed(seed)
    model = retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=num_classes)
    randomize_bn(model)
    model.eval()
    export_state_dict(model.state_dict(), os.path.join(out_dir, "weights.pt"))
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        head = model.head(list(model.backbone(x).values()))
    save({"input": x, "cls_logits": head["cls_logits"], "bbox_regression": head["bbox_regression"]},
         os.path.join(out_dir, "ref.pt"))


def main():
    cmd = sys.argv[1]
    if cmd == "retinanet":
        retinanet(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                  int(sys.argv[6]))
    elif cmd == "retinanet_v2":
        retinanet_v2(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                     int(sys.argv[6]))
    elif cmd == "resnet":
        resnet(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
