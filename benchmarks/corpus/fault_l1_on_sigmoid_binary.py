"""Fault: a binary classifier ending in torch.sigmoid, trained with L1 loss against 0/1 labels in a custom loss_fn.

Modelled on: posts asking why a sigmoid + L1Loss / MSELoss "binary classifier" stalls near 50% accuracy or
gets stuck on confidently wrong samples; the advice is BCEWithLogitsLoss on the raw logit. Data: a
two-moons-like 2-D problem lifted into 8 dimensions.

expect: regression-loss-on-probabilities
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 64
task = "binary"


def _moons(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g).float()
    t = math.pi * torch.rand(n, generator=g)
    a = torch.stack([torch.cos(t), torch.sin(t)], 1)
    b = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    pts = torch.where(y[:, None] == 1, b, a) + 0.1 * torch.randn(n, 2, generator=g)
    x = torch.cat([(pts - torch.tensor([0.5, 0.25])) / 0.6, 0.5 * torch.randn(n, 6, generator=g)], 1)
    return x, y.unsqueeze(1)


train_data = _moons(2400, seed=0)
val_data = _moons(480, seed=1)


def loss_fn(prob, target):
    return F.l1_loss(prob, target)  # the fault: L1 on a probability vs 0/1 labels


class MoonNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
