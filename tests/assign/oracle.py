"""Reference values for tests/assign from torchvision 0.14 (run by test_assign).

usage: oracle.py matcher IN OUT   det_utils.Matcher(0.5, 0.4, True)(box_iou(IN['gt'], IN['anchors']))
"""
import os
import sys

import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from oracle_io import save  # noqa: E402


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
