"""Healthy: binary classification with one output logit and BCEWithLogitsLoss, float (N, 1) targets, a shuffled DataLoader.

Modelled on: the StackOverflow answers to "binary classifier: one output with BCEWithLogitsLoss or two with
CrossEntropyLoss?"; this is the one-logit version done right. Data: two interleaving moons, rotated into 8
dimensions with small noise.

expect: clean
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

task = "binary"
_ROT = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(2)))[0]


def _moons(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    t = math.pi * torch.rand(n, generator=g)
    pts = torch.stack([torch.cos(t), torch.sin(t)], 1)
    pts = torch.where(y[:, None] == 1, torch.stack([1 - pts[:, 0], 0.5 - pts[:, 1]], 1), pts)
    x = torch.cat([pts + 0.1 * torch.randn(n, 2, generator=g), 0.3 * torch.randn(n, 6, generator=g)], 1)
    x = (x - torch.tensor([0.5, 0.25, 0, 0, 0, 0, 0, 0])) / 0.6
    return x @ _ROT, y[:, None].float()


train_loader = DataLoader(TensorDataset(*_moons(2500, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_moons(500, seed=1)), batch_size=64)
loss_fn = nn.BCEWithLogitsLoss()


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
