"""Fault: fraud detection where 2% of the transactions are fraud, trained with a plain, unweighted CrossEntropyLoss.

Modelled on: the "my model gets 98% accuracy but never predicts the positive class" questions on
credit-card-fraud style data; the answers suggest class weights, a WeightedRandomSampler, or a metric
other than accuracy. Data: 14 standardised transaction features, fraud shifted along a few of them.

expect: class-imbalance
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_SHIFT = torch.zeros(14)
_SHIFT[:4] = torch.tensor([1.5, -1.2, 1.0, 0.8])


def _transactions(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.02).long()  # the fault: 2% positives, nothing re-weights them
    x = torch.randn(n, 14, generator=g) + y[:, None] * _SHIFT
    return x, y


train_loader = DataLoader(TensorDataset(*_transactions(4000, seed=0)), batch_size=128, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_transactions(1000, seed=1)), batch_size=128)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(14, 32), nn.ReLU(), nn.Linear(32, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
