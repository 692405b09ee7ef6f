"""Healthy: a denoising autoencoder (32 -> 8 -> 32, MSE against the clean signal) on data lying near a 4-d subspace.

Modelled on: the "autoencoder in PyTorch" tutorial questions where the target is the input itself (here its
clean version), i.e. regression with many outputs; inputs and targets standardised.

expect: clean
"""

import torch
from torch import nn

batch_size = 64
task = "regression"
_BASIS = torch.randn(4, 32, generator=torch.Generator().manual_seed(4)) / 2


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    clean = torch.tanh(torch.randn(n, 4, generator=g) @ _BASIS)
    clean = clean / clean.std()
    return clean + 0.3 * torch.randn(n, 32, generator=g), clean


train_data = _data(3000, seed=0)
val_data = _data(600, seed=1)
loss_fn = nn.MSELoss()


def build_model():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 64), nn.ReLU(),
                         nn.Linear(64, 32))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
