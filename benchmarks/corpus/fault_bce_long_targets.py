"""Fault: a churn classifier with one logit and BCEWithLogitsLoss, whose 0/1 targets are stored as int64.

Modelled on: the forum question "RuntimeError: result type Float can't be cast to the desired output type
Long" from BCEWithLogitsLoss, where the labels came out of a CSV / numpy array as integers and the answer
is target.float(). Data: 10 standardised customer features; churn depends on three of them.

expect: target-dtype-mismatch
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

task = "binary"


def _customers(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3]
    y = (torch.rand(n, generator=g) < torch.sigmoid(logit)).long()  # the fault: Long targets
    return x, y.unsqueeze(1)


train_loader = DataLoader(TensorDataset(*_customers(2400, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_customers(480, seed=1)), batch_size=64)
criterion = nn.BCEWithLogitsLoss()


def build_model():
    return nn.Sequential(nn.Linear(10, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 1))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
