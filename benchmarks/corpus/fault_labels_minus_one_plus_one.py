"""Fault: binary labels in the SVM convention, -1 and +1, given to a 2-output head with CrossEntropyLoss.

Modelled on: forum posts by people porting an SVM / perceptron dataset (labels in {-1, +1}) to PyTorch and
getting "IndexError: Target -1 is out of bounds"; the labels must be class indices 0 and 1. Data: two
concentric rings in 2-D, lifted with 4 noise features.

expect: label-range
"""

import math

import torch
from torch import nn

batch_size = 64


def _rings(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    radius = 1.0 + y.float() + 0.15 * torch.randn(n, generator=g)
    pts = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    x = torch.cat([pts / 1.2, torch.randn(n, 4, generator=g)], 1)
    return x, 2 * y - 1  # the fault: labels -1 / +1


train_data = _rings(2000, seed=0)
val_data = _rings(400, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
