"""Fault: a regression MLP with output (N, 1) trained by MSELoss against targets of shape (N,), which broadcast to (N, N).

Modelled on: the classic StackOverflow question "my regression network predicts the mean / the loss won't go
below the variance", answered by the UserWarning "Using a target size that is different to the input size"
that the asker had overlooked: every prediction is compared with every target in the batch. Data: a smooth
function of 6 standardised inputs (a made-up energy-consumption table).

expect: loss-target-broadcast
"""

import torch
from torch import nn

batch_size = 64
task = "regression"


def _energy(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 3] + 0.1 * torch.randn(n, generator=g)
    return x, (y - y.mean()) / y.std()  # the fault: targets are (N,), the model gives (N, 1)


train_data = _energy(3000, seed=0)
val_data = _energy(600, seed=1)
loss_fn = nn.MSELoss()


def build_model():
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
