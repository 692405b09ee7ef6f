"""Fault: Adam with lr=0.5 on a small classifier; the loss jumps around and climbs instead of falling.

Modelled on: the "loss explodes / becomes nan after a few iterations" and "accuracy stuck at chance with Adam"
questions where lr was set like an SGD rate (0.1-1) for Adam; the reply is to go back to about 1e-3. Data: 3
classes from a noisy random linear map of 10-d inputs (about 93% validation accuracy at lr=1e-3, chance at 0.5).

expect: lr-too-high | loss-diverging | nan-loss | exploding-gradients
"""

import torch
from torch import nn

batch_size = 64
_W = torch.randn(10, 3, generator=torch.Generator().manual_seed(181))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    return x, (x @ _W + 0.3 * torch.randn(n, 3, generator=g)).argmax(1)


train_data = _data(2400, seed=0)
val_data = _data(480, seed=1)


def build_model():
    return nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 3))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=0.5)  # the fault: ~1e-3 suits Adam here
