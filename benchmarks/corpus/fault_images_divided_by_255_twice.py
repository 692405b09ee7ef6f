"""Fault: uint8-style images scaled to [0, 1] in the dataset and divided by 255 again in the training pipeline.

Modelled on: the "my CNN doesn't learn anything, accuracy stays at chance" questions where ToTensor() (which
already divides by 255) is followed by an explicit `/ 255.`; every pixel is then below 0.004. Data: 3x16x16
colour images whose class is the dominant colour of a random patch.

expect: inputs-near-zero
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Patches(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 3, (n,), generator=g)
        img = torch.randint(0, 120, (n, 3, 16, 16), generator=g)
        r, c = torch.randint(0, 8, (2, n), generator=g)
        for i in range(n):
            img[i, self.y[i], r[i]:r[i] + 8, c[i]:c[i] + 8] += 120
        self.images = img.to(torch.uint8)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0  # what ToTensor() does
        x = x / 255.0  # the fault: "normalise to [0, 1]" a second time
        return x, self.y[i]


train_loader = DataLoader(Patches(2000, seed=0), batch_size=50, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(Patches(400, seed=1), batch_size=50)


def build_model():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(32, 3))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
