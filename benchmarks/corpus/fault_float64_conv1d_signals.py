"""Fault: ECG-like 1-D signals parsed into a torch.float64 tensor, fed to a float32 Conv1d classifier.

Modelled on: the GitHub/forum reports "RuntimeError: Input type (double) and bias type (float) should be the
same" from Conv1d/Conv2d, when the signals were created with dtype=torch.double (or from Python floats via
numpy) while the model's weights are float32. Data: 96-sample beats, normal vs. with an extra bump.

expect: input-dtype-mismatch
"""

import math

import torch
from torch import nn

batch_size = 32


def _beats(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, 96, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g)
    shift = 0.1 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    beat = torch.exp(-((t - 0.4 - shift) / 0.03) ** 2) + 0.3 * torch.sin(2 * math.pi * t)
    bump = torch.exp(-((t - 0.7 - shift) / 0.05) ** 2) * y[:, None]
    x = beat + 0.6 * bump + 0.2 * torch.randn(n, 96, generator=g, dtype=torch.float64)
    return ((x - x.mean()) / x.std()).unsqueeze(1), y  # the fault: still float64


train_data = _beats(2000, seed=0)
val_data = _beats(400, seed=1)


def build_model():
    return nn.Sequential(nn.Conv1d(1, 16, 7, padding=3), nn.ReLU(), nn.MaxPool1d(4),
                         nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(32, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
