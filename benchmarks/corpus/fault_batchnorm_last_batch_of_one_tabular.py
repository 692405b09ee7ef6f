"""Fault: a tabular MLP with BatchNorm1d whose DataLoader leaves a last batch of one sample (2049 rows, batch 64).

Modelled on: the recurring forum thread "ValueError: Expected more than 1 value per channel when training"
that only shows up at the very end of the first epoch, because len(dataset) % batch_size == 1 and the
loader keeps the incomplete batch (drop_last=False). Data: a synthetic credit-risk table of 12 features.

expect: batchnorm-single-sample | batchnorm-last-batch-of-one
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_W = torch.randn(12, 3, generator=torch.Generator().manual_seed(11))


def _table(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    score = x @ _W + 0.3 * torch.randn(n, 3, generator=g)
    return x, score.argmax(1)


# the fault: 2049 = 32 * 64 + 1, so the last batch holds a single row
train_loader = DataLoader(TensorDataset(*_table(2049, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_table(512, seed=1)), batch_size=64)


def build_model():
    return nn.Sequential(nn.Linear(12, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 3))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
