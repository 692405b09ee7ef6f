"""Fault: a custom train_step whose forward pass was copied from the evaluation loop, inside torch.no_grad().

Modelled on: the forum threads where a training loop "does not have a grad_fn" because the author reused the
validation code (with torch.no_grad(): outputs = model(x)) in the training step. Data: a GRU regression of
the mean of a noisy 20-step sequence's second half.

expect: loss-without-grad | detached-output
"""

import torch
from torch import nn

batch_size = 32
task = "regression"


def _series(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, 3, generator=g)
    y = x[:, 10:, 0].mean(1, keepdim=True) * 3.0
    return x, y


train_data = _series(2000, seed=0)
val_data = _series(400, seed=1)
loss_fn = nn.MSELoss()


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 32, batch_first=True)
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        _, h = self.rnn(x)
        return self.out(h[-1])


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    model.train()
    optimizer.zero_grad()
    with torch.no_grad():  # the fault: copied from the validation loop
        pred = model(x)
    loss = loss_fn(pred, y)
    loss.backward()
    optimizer.step()
    return loss.item()
