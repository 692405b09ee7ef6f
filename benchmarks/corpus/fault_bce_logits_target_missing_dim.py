"""Fault: a binary classifier with one logit, output (N, 1), and BCEWithLogitsLoss given float targets of shape (N,).

Modelled on: the many forum posts with "ValueError: Target size (torch.Size([32])) must be the same as input
size (torch.Size([32, 1]))", whose fix is target.unsqueeze(1) or output.squeeze(1). Data: spam-vs-ham style
bag-of-features vectors (20 standardised counts).

expect: loss-shape-mismatch
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

task = "binary"
_W = torch.randn(20, generator=torch.Generator().manual_seed(3))


def _messages(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    counts = torch.poisson(2 * torch.rand(n, 20, generator=g), generator=g)
    x = (counts - 1.0) / 1.2
    y = ((x @ _W + 0.5 * torch.randn(n, generator=g)) > 0).float()  # the fault: (N,), not (N, 1)
    return x, y


train_loader = DataLoader(TensorDataset(*_messages(2000, seed=0)), batch_size=32, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
loss_fn = nn.BCEWithLogitsLoss()


class SpamNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(20, 32)
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
