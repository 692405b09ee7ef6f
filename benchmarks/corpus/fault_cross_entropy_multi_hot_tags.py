"""Fault: multi-label tagging (each sample has 1-3 of 8 tags) trained with CrossEntropyLoss on multi-hot float targets.

Modelled on: the "multi-label classification: which loss?" questions where the asker used nn.CrossEntropyLoss
with [0, 1, 1, 0 ...] targets; it runs (float targets are read as class probabilities) but forces the tags
to compete in one softmax, where BCEWithLogitsLoss scores each tag on its own. Data: tags switched on by
their own feature directions, in 24 dimensions.

expect: cross-entropy-multi-hot
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_DIRS = torch.randn(8, 24, generator=torch.Generator().manual_seed(101))


def _tagged(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    tags = torch.zeros(n, 8)
    for extra in range(3):
        pick = torch.randint(0, 8, (n,), generator=g)
        keep = torch.rand(n, generator=g) < (1.0 if extra == 0 else 0.5)
        tags[torch.arange(n)[keep], pick[keep]] = 1.0
    x = tags @ _DIRS + 0.7 * torch.randn(n, 24, generator=g)
    return (x - x.mean(0)) / x.std(0), tags


train_loader = DataLoader(TensorDataset(*_tagged(2400, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_tagged(480, seed=1)), batch_size=64)
criterion = nn.CrossEntropyLoss()  # the fault: BCEWithLogitsLoss was meant for multi-hot targets


def build_model():
    return nn.Sequential(nn.Linear(24, 96), nn.ReLU(), nn.Linear(96, 8))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
