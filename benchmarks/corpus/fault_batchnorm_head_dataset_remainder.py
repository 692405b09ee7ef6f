"""Fault: a CNN whose classifier head has BatchNorm1d, trained from a map-style Dataset of 1601 images with batch_size 32.

Modelled on: GitHub issues and forum posts where a model trains for a whole epoch and then dies with
"Expected more than 1 value per channel when training, got input size torch.Size([1, 64])": the head's
BatchNorm1d sees the single image left over by 1601 % 32 == 1. Data: bright squares vs. bright discs
on a noisy 1x24x24 canvas, produced on the fly by a custom Dataset.

expect: batchnorm-single-sample | batchnorm-last-batch-of-one
"""

import torch
from torch import nn
from torch.utils.data import Dataset

batch_size = 32


class Shapes(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 2, (n,), generator=g)
        centre = 6 + 12 * torch.rand(n, 2, generator=g)
        r = torch.arange(24.0)
        dy = (r[None, :, None] - centre[:, 0, None, None]).abs()
        dx = (r[None, None, :] - centre[:, 1, None, None]).abs()
        square = torch.maximum(dx, dy) < 4
        disc = dx ** 2 + dy ** 2 < 20
        img = torch.where(self.y[:, None, None] == 1, square, disc).float()
        self.x = ((img + 0.5 * torch.randn(n, 24, 24, generator=g)) - 0.2).unsqueeze(1) / 0.6

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


train_dataset = Shapes(1601, seed=0)  # the fault: 1601 = 50 * 32 + 1
val_dataset = Shapes(320, seed=1)


def build_model():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 6 * 6, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
