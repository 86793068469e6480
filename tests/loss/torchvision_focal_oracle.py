"""Oracle for the focal-loss tests: torchvision.ops.sigmoid_focal_loss (Debian python3-torchvision)
on the inputs the C++ test wrote. usage: torchvision_focal_oracle.py IN.pt OUT.pt
IN holds logits [N, C] float64, one_hot [N, C] float64, alpha, gamma (1-element tensors).
OUT gets loss [N, C] (reduction none) and grad = d(sum loss)/d(logits)."""
import sys

import torch
from torchvision.ops import sigmoid_focal_loss

inp = torch.load(sys.argv[1])
x = inp["logits"].clone().requires_grad_(True)
loss = sigmoid_focal_loss(x, inp["one_hot"], alpha=float(inp["alpha"]), gamma=float(inp["gamma"]),
                          reduction="none")
loss.sum().backward()
torch.save({"loss": loss.detach(), "grad": x.grad}, sys.argv[2])
