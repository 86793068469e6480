"""Reference values for tests/anchors from torchvision 0.14 (run by test_anchors).

usage: oracle.py anchors OUT H W h1 w1 h2 w2 ...   anchors of torchvision's RetinaNet generator
       oracle.py iou IN OUT                        box_iou(IN['a'], IN['b'])
       oracle.py coder IN OUT                      BoxCoder((1, 1, 1, 1)) / given weights
"""
import os
import sys

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.retinanet import _default_anchorgen
from torchvision.ops import box_iou

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from oracle_io import save  # noqa: E402


def main():
    cmd = sys.argv[1]
    if cmd == "anchors":
        out, h, w = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        sizes = [int(v) for v in sys.argv[5:]]
        gen = _default_anchorgen()
        assert isinstance(gen, AnchorGenerator)
        images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
        feats = [torch.zeros(1, 1, sizes[i], sizes[i + 1]) for i in range(0, len(sizes), 2)]
        anchors = gen(images, feats)[0]
        save({"anchors": anchors, "cell0": gen.cell_anchors[0]}, out)
    elif cmd == "iou":
        t = torch.load(sys.argv[2])
        save({"iou": box_iou(t["a"], t["b"])}, sys.argv[3])
    elif cmd == "coder":
        t = torch.load(sys.argv[2])
        coder = det_utils.BoxCoder(weights=tuple(t["weights"].tolist()))
        save({"deltas": coder.encode_single(t["boxes"], t["anchors"]),
              "decoded": coder.decode_single(t["rel"], t["anchors"])}, sys.argv[3])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
