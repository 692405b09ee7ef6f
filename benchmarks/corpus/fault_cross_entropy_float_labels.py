"""Fault: class indices stored as float32 (0.0, 1.0, 2.0 ...) passed to CrossEntropyLoss with (N, C) scores.

Modelled on: the StackOverflow questions "expected scalar type Long but found Float" / "Expected floating
point type for target with class probabilities" from nn.CrossEntropyLoss, when a whole dataframe, labels
included, was turned into one float tensor. Data: 5 Gaussian classes in 8 dimensions, read "from a table"
whose last column is the label.

expect: target-dtype-mismatch
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_CENTRES = 2.0 * torch.randn(5, 8, generator=torch.Generator().manual_seed(21))


def _table(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (n,), generator=g)
    x = _CENTRES[y] + torch.randn(n, 8, generator=g)
    table = torch.cat([(x - x.mean(0)) / x.std(0), y[:, None].float()], 1)  # features and label, all float
    return table[:, :-1], table[:, -1]  # the fault: the label column stays float


train_loader = DataLoader(TensorDataset(*_table(2500, seed=0)), batch_size=50, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_table(500, seed=1)), batch_size=50)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 5))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
