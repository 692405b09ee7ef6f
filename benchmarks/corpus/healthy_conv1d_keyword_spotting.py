"""Healthy: a 1-D CNN "keyword spotter" on raw audio-like waveforms (8 kHz-ish, 512 samples), 5 classes, with BatchNorm1d.

Modelled on: the speech-commands style "1D CNN on raw audio" questions; here each "keyword" is a chirp with
its own start frequency and sweep, at a random onset and loudness, in background noise. Loader with
shuffle and drop_last, waveforms normalised to unit variance.

expect: clean
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _clips(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (n,), generator=g)
    t = torch.arange(256.0)
    f0 = torch.tensor([0.05, 0.12, 0.2, 0.08, 0.16])[y][:, None]
    sweep = torch.tensor([0.0, 0.0004, -0.0003, 0.0006, -0.0005])[y][:, None]
    chirp = torch.sin(2 * math.pi * (f0 * t + sweep * t ** 2) + 6 * torch.rand(n, 1, generator=g))
    loud = 0.5 + torch.rand(n, 1, generator=g)
    x = 0.5 * torch.randn(n, 512, generator=g)
    onset = torch.randint(0, 256, (n,), generator=g)
    for i in range(n):
        x[i, onset[i]:onset[i] + 256] += loud[i] * chirp[i]
    return (x / x.std()).unsqueeze(1), y


train_loader = DataLoader(TensorDataset(*_clips(2000, seed=0)), batch_size=50, shuffle=True, drop_last=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_clips(400, seed=1)), batch_size=50)


def build_model():
    def block(cin, cout, k):
        return [nn.Conv1d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU(),
                nn.MaxPool1d(4)]
    return nn.Sequential(*block(1, 16, 9), *block(16, 32, 5), *block(32, 32, 3), nn.AdaptiveAvgPool1d(1),
                         nn.Flatten(), nn.Linear(32, 5))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
