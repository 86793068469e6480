"""Reference values for tests/assign from torchvision 0.14 (run by test_assign).

usage: oracle.py matcher IN OUT   det_utils.Matcher(0.5, 0.4, True)(box_iou(IN['gt'], IN['anchors']))
"""
import sys

import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou


def save(tensors, path):
    """torch.save, with a second entry: LibTorch 1.13's unpickler (torch::pickle_load) lacks the
    SETITEM opcode that pickle uses for a one-entry dict."""
    torch.save(dict(tensors, _count=torch.tensor(len(tensors))), path)


def main():
    cmd = sys.argv[1]
    if cmd == "matcher":
        t = torch.load(sys.argv[2])
        matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
        save({"matches": matcher(box_iou(t["gt"], t["anchors"]))}, sys.argv[3])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
