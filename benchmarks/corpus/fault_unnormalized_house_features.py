"""Fault: a house-price regressor fed raw features (floor area in sq ft, lot size, year built, ...) in the thousands.

Modelled on: the "loss is huge / NaN / predictions all the same for my housing-price network" posts whose
answer is to standardise the inputs (StandardScaler) before the first Linear layer. The targets here are
standardised, only the inputs are raw. Data: 6 made-up property features on their natural scales.

expect: unnormalized-inputs
"""

import torch
from torch import nn

batch_size = 64
task = "regression"


def _houses(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    area = 800 + 2500 * torch.rand(n, generator=g)
    lot = 2000 + 8000 * torch.rand(n, generator=g)
    year = 1950 + 70 * torch.rand(n, generator=g)
    rooms = torch.randint(1, 7, (n,), generator=g).float()
    dist = 500 + 15000 * torch.rand(n, generator=g)  # metres to the centre
    garage = torch.randint(0, 2, (n,), generator=g).float()
    x = torch.stack([area, lot, year, rooms, dist, garage], 1)  # the fault: never standardised
    price = 0.002 * area + 0.0002 * lot + 0.03 * (year - 1950) + 0.3 * rooms - 0.0001 * dist + 0.5 * garage
    price = price + 0.3 * torch.randn(n, generator=g)
    return x, ((price - price.mean()) / price.std()).unsqueeze(1)


train_data = _houses(3000, seed=0)
val_data = _houses(600, seed=1)
loss_fn = nn.MSELoss()


def build_model():
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
