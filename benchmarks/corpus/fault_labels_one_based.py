"""Fault: ten classes labelled 1..10 (as in the source CSV) with a 10-output head and CrossEntropyLoss.

Modelled on: the very common "IndexError: Target 10 is out of bounds" / "CUDA error: device-side assert
triggered" question, where the labels start at 1 and the answer is to subtract one (or to size the head
for the largest label + 1). Data: 10 clusters of 24-d "digit feature" vectors.

expect: label-range
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_CENTRES = 1.5 * torch.randn(10, 24, generator=torch.Generator().manual_seed(31))


def _digits(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 10, (n,), generator=g)
    x = _CENTRES[k] + torch.randn(n, 24, generator=g)
    return (x - x.mean(0)) / x.std(0), k + 1  # the fault: labels 1..10


train_loader = DataLoader(TensorDataset(*_digits(3000, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_digits(600, seed=1)), batch_size=64)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(24, 128), nn.ReLU(), nn.Linear(128, 10))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
