"""torchvision 0.14's RetinaNet losses for tests/train/test_detector_parity.cpp (run by test_train).

usage: detector_oracle.py DIR DEPTH CHANNELS NUM_CLASSES

  DIR/weights.pt  focaldet's state dict (named parameters and buffers), written by the test
  DIR/inputs.pt   images [2, 3, H, W] (normalised, padded: torchvision's transform is skipped),
                  boxes0/labels0, boxes1/labels1 (x1 y1 x2 y2 in pixels of the padded image,
                  class index in [0, NUM_CLASSES))
  DIR/ref.pt      for each case ("one": image 0; "two": images 0 and 1; "empty": images 0 and 1
                  with image 1's boxes removed): <case>_cls, <case>_box (RetinaNet.compute_loss)
                  and <case>_num_pos (anchors with a matched box); for "two" also
                  two_grad.<name>: the gradient of cls + box with respect to parameter <name>.

The model: resnet{DEPTH} with FrozenBatchNorm2d, BackboneWithFPN on layer2..layer4 with
CHANNELS channels and LastLevelP6P7(CHANNELS, CHANNELS) (P6 from P5), RetinaNetHead (4 convs of
CHANNELS channels), the default AnchorGenerator (32..512 px, 3 octaves, 3 ratios). It loads the
weights strictly by name, so a focaldet name that torchvision does not have, or the reverse, is
an error here. Head and anchor generator are called directly on the given tensor, as
RetinaNet.forward does in training after its transform.
"""
import os
import sys

import torch
from torchvision import models
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.ops import boxes as box_ops
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from oracle_io import save  # noqa: E402

# Parameters whose gradients the test compares: the two output convs and a layer deep in the
# backbone, so the whole backward pass is covered.
GRAD_NAMES = ("head.classification_head.cls_logits.weight",
              "head.classification_head.cls_logits.bias",
              "head.regression_head.bbox_reg.weight",
              "head.regression_head.bbox_reg.bias",
              "backbone.fpn.inner_blocks.2.0.weight",
              "backbone.body.layer4.1.conv2.weight")


def build(depth, channels, num_classes):
    body = getattr(models, "resnet%d" % depth)(weights=None, norm_layer=FrozenBatchNorm2d)
    c3 = 512 if depth == 50 else 128
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"},
                               [c3, c3 * 2, c3 * 4], channels,
                               extra_blocks=LastLevelP6P7(channels, channels))
    return RetinaNet(backbone, num_classes=num_classes)


def losses(model, images, targets):
    """RetinaNet.forward's training branch without GeneralizedRCNNTransform."""
    feats = list(model.backbone(images).values())
    head_outputs = model.head(feats)
    size = (images.size(2), images.size(3))
    anchors = model.anchor_generator(ImageList(images, [size] * images.size(0)), feats)
    out = model.compute_loss(targets, head_outputs, anchors)
    num_pos = 0
    for a, t in zip(anchors, targets):
        if t["boxes"].numel() > 0:
            matched = model.proposal_matcher(box_ops.box_iou(t["boxes"], a))
            num_pos += int((matched >= 0).sum())
    return out["classification"], out["bbox_regression"], num_pos


def main():
    out_dir, depth, channels, num_classes = sys.argv[1], *map(int, sys.argv[2:5])
    torch.set_num_threads(1)
    model = build(depth, channels, num_classes)
    state = torch.load(os.path.join(out_dir, "weights.pt"))
    model.load_state_dict(state, strict=True)
    model.train()  # frozen BN: the same as eval; the mode RetinaNet computes losses in
    inp = torch.load(os.path.join(out_dir, "inputs.pt"))
    x = inp["images"]
    t0 = {"boxes": inp["boxes0"], "labels": inp["labels0"]}
    t1 = {"boxes": inp["boxes1"], "labels": inp["labels1"]}
    t1_empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    params = dict(model.named_parameters())
    ref = {}
    for case, images, targets in (("one", x[:1], [t0]), ("two", x, [t0, t1]),
                                  ("empty", x, [t0, t1_empty])):
        model.zero_grad()
        cls, box, num_pos = losses(model, images, targets)
        (cls + box).backward()
        ref[case + "_cls"] = cls.detach()
        ref[case + "_box"] = box.detach()
        ref[case + "_num_pos"] = torch.tensor(num_pos)
        if case == "two":
            for name in GRAD_NAMES:
                ref["two_grad." + name] = params[name].grad.detach().clone()
    save(ref, os.path.join(out_dir, "ref.pt"))


if __name__ == "__main__":
    main()
