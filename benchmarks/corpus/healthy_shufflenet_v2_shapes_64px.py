"""Healthy: torchvision shufflenet_v2_x0_5 (weights=None, 3 classes) on 3x64x64 images of a square, a disk or a cross.

Modelled on: the "train a torchvision model from scratch on my own small image set" questions, and on the
report that doctor flagged a healthy ShuffleNetV2 with train-eval-discrepancy (BatchNorm statistics after a
short burst, not a fault of the user's); the images
are drawn in code (random size, position and colour on a noisy background), standardised per channel, and
served by a Dataset class.

expect: clean
"""

import torch
import torchvision
from torch.utils.data import Dataset

batch_size = 32
SIZE = 64


def _shapes(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    r = torch.arange(float(SIZE))
    rows, cols = r[:, None], r[None, :]
    centre = 16 + 32 * torch.rand(n, 2, generator=g)
    half = 6 + 8 * torch.rand(n, generator=g)
    colour = 0.5 + torch.rand(n, 3, generator=g)
    x = 0.3 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    for i in range(n):
        dr, dc, h = (rows - centre[i, 0]).abs(), (cols - centre[i, 1]).abs(), half[i]
        if y[i] == 0:
            mask = (dr <= h) & (dc <= h)
        elif y[i] == 1:
            mask = dr ** 2 + dc ** 2 <= h ** 2
        else:
            mask = ((dr <= h) & (dc <= h / 4)) | ((dc <= h) & (dr <= h / 4))
        x[i] += colour[i][:, None, None] * mask
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    return x, y


class Shapes(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.x, self.y = _shapes(n, seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def build_model():
    return torchvision.models.shufflenet_v2_x0_5(weights=None, num_classes=3)


def train_dataset():
    return Shapes(1536, seed=0)


def val_dataset():
    return Shapes(384, seed=1)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
