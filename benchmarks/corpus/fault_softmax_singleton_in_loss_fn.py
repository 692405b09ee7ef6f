"""Fault: a custom loss_fn turns a single regression-style score per sample into a "probability" with F.softmax(dim=-1).

Modelled on: StackOverflow questions about a click-through / relevance model whose loss is flat and whose
gradients are exactly zero; the score has shape (N, 1), and softmax over that size-1 dimension is always 1.
Data: click (1) or not (0) from 10 standardised features, one score per sample.

expect: softmax-over-singleton
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 64
task = "binary"
_W = torch.randn(10, generator=torch.Generator().manual_seed(121))


def _clicks(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (torch.rand(n, generator=g) < torch.sigmoid(x @ _W)).float()
    return x, y.unsqueeze(1)


train_data = _clicks(2400, seed=0)
val_data = _clicks(480, seed=1)


def loss_fn(score, target):
    prob = F.softmax(score, dim=-1)  # the fault: softmax over a dimension of size 1
    return F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), target)


class ClickModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
