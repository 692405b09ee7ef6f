"""Fault: features built and standardised in numpy (float64) and wrapped with torch.from_numpy, fed to a float32 model.

Modelled on: the perennial "RuntimeError: mat1 and mat2 must have the same dtype" (older versions: "expected
scalar type Double but found Float") forum question; torch.from_numpy keeps numpy's float64, and the fix is
.float() or astype(np.float32). Data: a sensor-fault table of 14 numpy features, 3 classes.

expect: input-dtype-mismatch
"""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_MIX = np.random.default_rng(5).normal(size=(14, 3))


def _sensors(n: int, seed: int):
    rng = np.random.default_rng(seed)
    raw = rng.normal(loc=20.0, scale=4.0, size=(n, 14))
    x = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    y = (x @ _MIX + 0.3 * rng.normal(size=(n, 3))).argmax(axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)  # the fault: x is float64


train_loader = DataLoader(TensorDataset(*_sensors(2400, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_sensors(480, seed=1)), batch_size=64)


def build_model():
    return nn.Sequential(nn.Linear(14, 64), nn.ReLU(), nn.Linear(64, 3))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
