"""Healthy: an encoder-decoder GRU forecasting the next 8 values of a noisy mixture of sines from the past 24.

Modelled on: the "seq2seq time-series forecasting with GRU in PyTorch" tutorial questions; the encoder's final
state seeds a decoder that unrolls over the horizon, trained with MSE on (N, 8) targets. Series are
standardised per sample, so inputs and targets are on a unit scale.

expect: clean
"""

import math

import torch
from torch import nn

batch_size = 64
task = "regression"
PAST, HORIZON = 24, 8


def _series(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(PAST + HORIZON, dtype=torch.float32)
    f1 = 0.15 + 0.2 * torch.rand(n, 1, generator=g)
    f2 = 0.4 + 0.3 * torch.rand(n, 1, generator=g)
    p = 2 * math.pi * torch.rand(n, 2, generator=g)
    s = torch.sin(f1 * t + p[:, :1]) + 0.5 * torch.sin(f2 * t + p[:, 1:])
    s = s + 0.1 * torch.randn(n, PAST + HORIZON, generator=g)
    return s[:, :PAST, None] / 0.8, s[:, PAST:] / 0.8


train_data = _series(3000, seed=0)
val_data = _series(600, seed=1)
loss_fn = nn.MSELoss()


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(1, 48, batch_first=True)
        self.decoder = nn.GRU(1, 48, batch_first=True)
        self.out = nn.Linear(48, 1)

    def forward(self, past):
        _, h = self.encoder(past)
        step, outputs = past[:, -1:, :], []
        for _ in range(HORIZON):
            dec, h = self.decoder(step, h)
            step = self.out(dec)
            outputs.append(step)
        return torch.cat(outputs, 1).squeeze(2)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
