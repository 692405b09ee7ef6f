"""Fault: a custom train_step clamps the model's sigmoid output in place (`probs.clamp_(eps, 1 - eps)`) before BCELoss.

Modelled on: reports of "modified by an inplace operation ... output 0 of SigmoidBackward0 ... is at version 1;
expected version 0" from people who clamp probabilities "to avoid log(0)" with the in-place clamp_ instead of
torch.clamp. Data: defect / no-defect from 16 standardised process measurements.

expect: inplace-modification
"""

import torch
from torch import nn

batch_size = 64
task = "binary"
_W = torch.randn(16, generator=torch.Generator().manual_seed(71))


def _process(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = ((x @ _W) / 4 + 0.3 * torch.randn(n, generator=g) > 0).float()
    return x, y.unsqueeze(1)


train_data = _process(2400, seed=0)
val_data = _process(480, seed=1)
loss_fn = nn.BCELoss()


def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    probs = model(x)
    probs.clamp_(1e-6, 1 - 1e-6)  # the fault: in place on sigmoid's saved output
    loss = loss_fn(probs, y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
