"""Fault: regression of integer star ratings (1-5) with HuberLoss, the targets left as int64.

Modelled on: the frequent "RuntimeError: Found dtype Long but expected Float" report, raised in backward(),
when the regression targets were integers in the source data; the fix is target.float(). (Recent PyTorch
promotes Long targets silently in MSELoss and L1Loss; HuberLoss and BCELoss still raise.) Data: a
review-embedding-like 16-d vector whose rating is a rounded linear score.

expect: target-dtype-mismatch
"""

import torch
from torch import nn

batch_size = 64
task = "regression"
_W = torch.randn(16, generator=torch.Generator().manual_seed(8)) / 4


def _ratings(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    stars = (3 + x @ _W + 0.3 * torch.randn(n, generator=g)).round().clamp(1, 5).long()  # the fault
    return x, stars.unsqueeze(1)


train_data = _ratings(2500, seed=0)
val_data = _ratings(500, seed=1)
loss_fn = nn.HuberLoss()


def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
