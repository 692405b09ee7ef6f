"""Healthy: a Conv1d signal classifier whose custom train_step accumulates 4 micro-batches, each loss divided by 4.

Modelled on: the forum answers on gradient accumulation ("divide the loss by the number of accumulation
steps, call step() and zero_grad() once per k micro-batches"); this is that recipe, done right. Each
class is a sine of its own frequency under noise.

expect: clean
"""

import math

import torch
from torch import nn

batch_size = 64
ACCUM = 4


def _signals(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(64.0)
    freq = torch.tensor([0.15, 0.35, 0.6])[y][:, None]
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    x = torch.sin(freq * t + phase) + 0.7 * torch.randn(n, 64, generator=g)
    return (x / x.std()).unsqueeze(1), y


train_data = _signals(2048, seed=0)
val_data = _signals(512, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(),
                         nn.Linear(32, 3))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for xs, ys in zip(x.chunk(ACCUM), y.chunk(ACCUM)):
        loss = loss_fn(model(xs), ys) / ACCUM
        loss.backward()
        total += loss.detach()
    optimizer.step()
    return total
