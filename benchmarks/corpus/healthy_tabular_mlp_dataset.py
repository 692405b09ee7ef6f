"""Healthy: tabular classification through a hand-written Dataset class (12 features, 3 classes), MLP with dropout, AdamW.

Modelled on: the many beginner forum and StackOverflow posts that train an MLP on a CSV table through their
own torch.utils.data.Dataset; here done right (standardised features, integer labels 0..2, a nonlinear but
learnable rule behind the labels).

expect: clean
"""

import torch
from torch import nn
from torch.utils.data import Dataset

batch_size = 64
_W = torch.randn(12, 3, generator=torch.Generator().manual_seed(7))


class TableDataset(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 12, generator=g)
        score = torch.tanh(self.x @ _W) + 0.3 * self.x[:, :3] ** 2
        self.y = score.argmax(1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


train_dataset = TableDataset(3000, seed=0)
val_dataset = TableDataset(600, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
