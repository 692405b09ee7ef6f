"""Fault: SGD with momentum and lr=0.5 on a deeper regression MLP; the loss blows up to inf/NaN within a few steps.

Modelled on: the StackOverflow classic "my regression loss goes to nan" where the answer is a lower learning
rate (or gradient clipping). Data: a smooth 8-d target function, inputs and targets standardised.

expect: lr-too-high | loss-diverging | nan-loss | exploding-gradients
"""

import torch
from torch import nn

batch_size = 32
task = "regression"


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = x[:, 0] * x[:, 1] + torch.cos(x[:, 2]) + 0.5 * x[:, 3:].sum(1) + 0.1 * torch.randn(n, generator=g)
    return x, ((y - y.mean()) / y.std()).unsqueeze(1)


train_data = _data(2000, seed=0)
val_data = _data(400, seed=1)
loss_fn = nn.MSELoss()


def build_model():
    layers = [nn.Linear(8, 128), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Linear(128, 128), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 1))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)  # the fault: ~0.01 suits this model
