"""Fault: plain SGD with lr=1e-5 on a small MLP; the loss falls, but at a crawl.

Modelled on: "training loss decreases extremely slowly, is my model too small?" questions where the learning
rate was copied from a fine-tuning recipe (1e-5) into plain SGD training from scratch; an LR range test puts
a good rate two to four decades higher. Data: 5 classes from a random linear map of 20-d inputs.

expect: lr-too-low
"""

import torch
from torch import nn

batch_size = 64
_W = torch.randn(20, 5, generator=torch.Generator().manual_seed(171))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return x, (x @ _W + 0.2 * torch.randn(n, 5, generator=g)).argmax(1)


train_data = _data(3000, seed=0)
val_data = _data(600, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=1e-5)  # the fault: about 0.05-0.1 suits plain SGD here
