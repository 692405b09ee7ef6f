"""Fault: a binary classifier with one output unit followed by nn.Softmax(dim=1): the "probability" is always 1.0.

Modelled on: the forum question "my binary classifier always predicts 1 and the loss never changes",
where the model ends with Linear(..., 1) + Softmax (copied from a multi-class example) and BCELoss; softmax
over a single logit is constant, so no gradient reaches the network. Data: 2 Gaussian blobs, 12-d.

expect: softmax-over-singleton
"""

import torch
from torch import nn

batch_size = 64
task = "binary"
_SHIFT = torch.randn(12, generator=torch.Generator().manual_seed(111))


def _blobs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g).float()
    x = torch.randn(n, 12, generator=g) + (2 * y[:, None] - 1) * _SHIFT * 0.5
    return x / x.std(), y.unsqueeze(1)


train_data = _blobs(2400, seed=0)
val_data = _blobs(480, seed=1)
loss_fn = nn.BCELoss()


def build_model():
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 1), nn.Softmax(dim=1))  # the fault


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
