"""Healthy: 1537 samples in batches of 128 leave one over, and the DataLoader drops it (drop_last=True); BatchNorm1d MLP.

Modelled on: the answer given in the "Expected more than 1 value per channel when training" threads
(pass drop_last=True); the setup that follows that advice must not be flagged. The label says whether a
point lies outside the median radius (a nonlinear boundary).

expect: clean
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _shells(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x.norm(dim=1) > 10 ** 0.5).long()  # about half of a 10-d standard normal lies outside radius sqrt(10)
    return x, y


train_loader = DataLoader(TensorDataset(*_shells(1537, seed=0)), batch_size=128, shuffle=True, drop_last=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_shells(512, seed=1)), batch_size=128)


def build_model():
    return nn.Sequential(nn.Linear(10, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
