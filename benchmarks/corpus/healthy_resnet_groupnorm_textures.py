"""Healthy: a small ResNet-style CNN (residual blocks with GroupNorm) classifying 4 texture types in 1x32x32 images.

Modelled on: the "BatchNorm misbehaves with my small batches, use GroupNorm?" forum answers; this is the
GroupNorm version, with identity shortcuts, Kaiming init and SGD momentum. Data: checkerboards, stripes,
dots and noise patches at random scales, standardised.

expect: clean
"""

import torch
from torch import nn

batch_size = 32


def _textures(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    r = torch.arange(32.0)
    period = torch.randint(3, 7, (n, 1, 1), generator=g).float()
    rows, cols = r[None, :, None] / period, r[None, None, :] / period
    checker = ((rows.floor() + cols.floor()) % 2) * 2 - 1
    stripes = (rows.floor() % 2) * 2 - 1 + 0 * cols
    dots = ((rows % 1 - 0.5) ** 2 + (cols % 1 - 0.5) ** 2 < 0.06).float() * 2 - 1
    noise = torch.randn(n, 32, 32, generator=g).sign()
    x = torch.stack([checker, stripes, dots, noise], 1)[torch.arange(n), y]
    x = x + 0.6 * torch.randn(n, 32, 32, generator=g)
    return (x / x.std()).unsqueeze(1), y


train_data = _textures(2000, seed=0)
val_data = _textures(400, seed=1)


class Block(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.GroupNorm(4, ch), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.GroupNorm(4, ch))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def build_model():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.GroupNorm(4, 16), nn.ReLU(),
                         Block(16), nn.MaxPool2d(2), Block(16), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
