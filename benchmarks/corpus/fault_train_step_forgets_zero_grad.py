"""Fault: a custom train_step for a small CNN that never calls optimizer.zero_grad(), so gradients pile up across steps.

Modelled on: the beginner question "why do we need to call zero_grad() in PyTorch?" asked after a loss that
first falls and then oscillates wildly; the hand-written loop had backward() and step() but no zero_grad().
Data: 1x12x12 images of a bright bar in one of 4 positions, under noise.

expect: train-step-without-zero-grad | gradient-accumulation
"""

import torch
from torch import nn

batch_size = 64


def _bars(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    img = 0.7 * torch.randn(n, 12, 12, generator=g)
    for k in range(4):
        img[y == k, 3 * k:3 * k + 2, :] += 1.5
    return ((img - img.mean()) / img.std()).unsqueeze(1), y


train_data = _bars(2000, seed=0)
val_data = _bars(400, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 32), nn.ReLU(), nn.Linear(32, 4))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    model.train()
    loss = loss_fn(model(x), y)  # the fault: no optimizer.zero_grad() anywhere
    loss.backward()
    optimizer.step()
    return loss.item()
