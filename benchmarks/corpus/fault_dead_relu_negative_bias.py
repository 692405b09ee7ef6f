"""Fault: a hand-written init sets every hidden bias to -4, so almost all ReLU units are off for every input.

Modelled on: "dying ReLU" questions ("most of my activations are zero", "the network outputs the same value
for every input") traced to a custom weights_init that set biases to a large negative constant. Data: 4
classes of 16-d standardised vectors.

expect: dead-relu
"""

import torch
from torch import nn

batch_size = 64
_W = torch.randn(16, 4, generator=torch.Generator().manual_seed(191))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    return x, (x @ _W).argmax(1)


train_data = _data(2400, seed=0)
val_data = _data(480, seed=1)


def _weights_init(m):
    if isinstance(m, nn.Linear):
        nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        nn.init.constant_(m.bias, -4.0)  # the fault: pre-activations are ~N(-4, 1.4)


def build_model():
    net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    net.apply(_weights_init)
    return net


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
