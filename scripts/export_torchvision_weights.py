#!/usr/bin/env python3
"""Writes a torchvision ResNet or RetinaNet state dict to a file that focaldet's C++ model loads
by parameter name (model::load_weights): a torch.save'd plain dict name -> tensor.

  scripts/export_torchvision_weights.py retinanet_resnet50_fpn out.pt   # COCO-trained RetinaNet
  scripts/export_torchvision_weights.py retinanet_resnet50_fpn_v2 out.pt
      # its v2: load with head.group_norm = true and p6_from = C5
  scripts/export_torchvision_weights.py resnet50 out.pt                 # ImageNet backbone
  scripts/export_torchvision_weights.py resnet18 out.pt --random --seed 0

ResNet weights are renamed to the detector's backbone.body.* and lose the classifier (fc.*);
load them with WeightImportOptions::allow_missing (the FPN and head stay at their init).
Pretrained weights are downloaded by torchvision into its cache (needs network once).
Needs python3-torch and python3-torchvision (Debian: /usr/bin/python3).
"""
import argparse

import torch
import torchvision


def export_state_dict(state_dict, path, prefix="", drop=("fc.",)):
    """Saves {prefix + name: tensor} as a plain dict (LibTorch's unpickler cannot read
    OrderedDict), contiguous and detached, skipping names that start with an entry of `drop`."""
    out = {}
    for name, t in state_dict.items():
        if any(name.startswith(d) for d in drop):
            continue
        out[prefix + name] = t.detach().contiguous().clone()
    torch.save(out, path)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
                                    "resnet18", "resnet34", "resnet50"])
    p.add_argument("out")
    p.add_argument("--random", action="store_true", help="seeded random weights, no download")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    if a.model.startswith("retinanet"):
        weights = None if a.random else "DEFAULT"
        build = getattr(torchvision.models.detection, a.model)
        model = build(weights=weights, weights_backbone=None)
        sd = export_state_dict(model.state_dict(), a.out)
    else:
        model = getattr(torchvision.models, a.model)(weights=None if a.random else "DEFAULT")
        sd = export_state_dict(model.state_dict(), a.out, prefix="backbone.body.")
    print("wrote %d tensors to %s" % (len(sd), a.out))


if __name__ == "__main__":
    main()
