"""Reference values for tests/infer from torchvision 0.14 (run by test_infer).

usage: oracle.py nms IN OUT   nms and batched_nms of IN['boxes'], IN['scores'], IN['classes']
"""
import sys

import torch
from torchvision.ops import batched_nms, nms


def save(tensors, path):
    """torch.save, with a second entry: LibTorch 1.13's unpickler (torch::pickle_load) lacks the
    SETITEM opcode that pickle uses for a one-entry dict."""
    torch.save(dict(tensors, _count=torch.tensor(len(tensors))), path)


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
