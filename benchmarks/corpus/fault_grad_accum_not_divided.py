"""Fault: a custom train_step accumulates gradients over 4 micro-batches without dividing each loss by 4.

Modelled on: the forum threads "gradient accumulation gives different results than a big batch" and "training
became unstable after I added gradient accumulation": the summed gradient is k times the mean, so under SGD
the effective learning rate is k times larger (Adam would mostly normalise it away). Data: a GRU over
16-step sequences classifying their trend (rising, flat, falling).

expect: gradient-accumulation
"""

import torch
from torch import nn

batch_size = 64
ACCUM = 4


def _trends(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    slope = (1 - y.float())[:, None] * 0.1
    x = slope * torch.arange(16.0) + 0.4 * torch.randn(n, 16, generator=g)
    return (x - x.mean(1, keepdim=True)).unsqueeze(2), y


train_data = _trends(2048, seed=0)
val_data = _trends(512, seed=1)
loss_fn = nn.CrossEntropyLoss()


class TrendGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(1, 32, batch_first=True)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        _, h = self.rnn(x)
        return self.head(h[-1])


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    total = 0.0
    for xs, ys in zip(x.chunk(ACCUM), y.chunk(ACCUM)):
        loss = loss_fn(model(xs), ys)  # the fault: not divided by ACCUM
        loss.backward()
        total += loss.item()
    optimizer.step()
    return total / ACCUM
