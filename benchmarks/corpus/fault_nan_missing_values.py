"""Fault: a patient table where missing lab values are NaN, fed straight into the network.

Modelled on: the "loss becomes nan from the first batch" posts whose cause is NaN in the input data (pandas
read empty cells as NaN and nobody imputed them); the answer is to check torch.isnan(x).any() and fill or
drop. Data: 9 standardised measurements, about 1% of cells missing, binary outcome with two logits.

expect: invalid-values
"""

import torch
from torch import nn

batch_size = 64
_W = torch.randn(9, generator=torch.Generator().manual_seed(161))


def _patients(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 9, generator=g)
    y = (x @ _W + 0.5 * torch.randn(n, generator=g) > 0).long()
    missing = torch.rand(n, 9, generator=g) < 0.01
    return x.masked_fill(missing, float("nan")), y  # the fault: missing values never imputed


train_data = _patients(2400, seed=0)
val_data = _patients(480, seed=1)


def build_model():
    return nn.Sequential(nn.Linear(9, 32), nn.ReLU(), nn.Linear(32, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
