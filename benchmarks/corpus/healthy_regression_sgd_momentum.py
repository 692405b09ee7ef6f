"""Healthy: nonlinear regression (8 features, one standardised target), SiLU MLP, SGD with momentum and MSELoss.

Modelled on: StackOverflow questions about fitting a smooth function (sine plus quadratic) with a small
network and plain SGD; here with standardised inputs and target and a rate SGD-with-momentum tolerates.

expect: clean
"""

import torch
from torch import nn

batch_size = 64
task = "regression"
_W = torch.randn(8, 2, generator=torch.Generator().manual_seed(3))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    z = x @ _W / 8 ** 0.5
    y = torch.sin(2 * z[:, :1]) + 0.5 * z[:, 1:] ** 2 + 0.05 * torch.randn(n, 1, generator=g)
    return x, (y - y.mean()) / y.std()


train_data = _data(3000, seed=0)
val_data = _data(600, seed=1)
loss_fn = nn.MSELoss()


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
