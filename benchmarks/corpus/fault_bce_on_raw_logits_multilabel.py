"""Fault: multi-label genre tagging with nn.BCELoss on the raw outputs of a final Linear layer (no sigmoid).

Modelled on: the forum/GitHub reports "RuntimeError: all elements of input should be between 0 and 1" (and,
on GPU, a device-side assert) from BCELoss, whose fix is BCEWithLogitsLoss or a sigmoid. Data: 5 genres
from a 30-d "plot embedding", each genre switched on by its own direction.

expect: bce-without-sigmoid
"""

import torch
from torch import nn

batch_size = 64
task = "multilabel"
_DIRS = torch.randn(30, 5, generator=torch.Generator().manual_seed(141))


def _movies(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 30, generator=g)
    genres = ((x @ _DIRS) / 5.5 + 0.3 * torch.randn(n, 5, generator=g) > 0.5).float()
    return x, genres


train_data = _movies(2400, seed=0)
val_data = _movies(480, seed=1)
loss_fn = nn.BCELoss()  # the fault: the model gives logits


class GenreTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(30, 64)
        self.genres = nn.Linear(64, 5)

    def forward(self, x):
        return self.genres(torch.relu(self.hidden(x)))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
