"""Tensor exchange for the oracle scripts (tests/*/oracle.py) and the C++ tests
(tests/support/oracle.h: load_tensors / save_tensors)."""
import torch


def save(tensors, path):
    """torch.save, with a second entry: LibTorch 1.13's unpickler (torch::pickle_load) lacks the
    SETITEM opcode that pickle uses for a one-entry dict."""
    torch.save(dict(tensors, _count=torch.tensor(len(tensors))), path)
