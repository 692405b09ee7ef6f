"""Healthy: a small CNN with BatchNorm2d (conv without bias) classifying stripe orientation in 1x28x28 images, SGD momentum.

Modelled on: the "my first CNN with BatchNorm on MNIST-sized images" questions; here horizontal, vertical
and diagonal stripes of random frequency and phase under noise, standardised, as an (inputs, targets) pair.

expect: clean
"""

import math

import torch
from torch import nn

batch_size = 64


def _stripes(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    r = torch.arange(28.0)
    rows, cols = r[:, None].expand(28, 28), r[None, :].expand(28, 28)
    coord = torch.stack([rows, cols, (rows + cols) / math.sqrt(2)])[y]  # (n, 28, 28)
    freq = 0.5 + 0.7 * torch.rand(n, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    x = torch.sin(freq * coord + phase) + 0.8 * torch.randn(n, 28, 28, generator=g)
    return (x / x.std()).unsqueeze(1), y


train_data = _stripes(2048, seed=0)
val_data = _stripes(512, seed=1)


def build_model():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(1, 16), *block(16, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
