"""Reference values for tests/infer from torchvision 0.14 (run by test_infer).

usage: oracle.py nms IN OUT   nms and batched_nms of IN['boxes'], IN['scores'], IN['classes']
"""
import os
import sys

import torch
from torchvision.ops import batched_nms, nms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from oracle_io import save  # noqa: E402


def main():
    cmd = sys.argv[1]
    if cmd == "nms":
        t = torch.load(sys.argv[2])
        thresh = float(t["thresh"])
        save({"keep": nms(t["boxes"], t["scores"], thresh),
              "keep_batched": batched_nms(t["boxes"], t["scores"], t["classes"], thresh)},
             sys.argv[3])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
