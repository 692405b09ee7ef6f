"""Fault: a gated block writes `h += skip` in place on the output of torch.sigmoid, which sigmoid's backward needs.

Modelled on: the classic autograd error report "one of the variables needed for gradient computation has
been modified by an inplace operation: [torch.FloatTensor [64, 32]], which is output 0 of SigmoidBackward0",
where the answer is to write h = h + skip. Data: 4 classes on a noisy 2-D spiral, lifted to 10 dimensions.

expect: inplace-modification
"""

import math

import torch
from torch import nn

batch_size = 64
_LIFT = torch.randn(2, 10, generator=torch.Generator().manual_seed(61))


def _spiral(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    r = torch.rand(n, generator=g)
    angle = 4 * r + y * (math.pi / 2) + 0.2 * torch.randn(n, generator=g)
    pts = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) * 2
    return pts @ _LIFT / 1.5, y


train_data = _spiral(2400, seed=0)
val_data = _spiral(480, seed=1)


class GatedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(10, 32)
        self.gate = nn.Linear(32, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        skip = torch.relu(self.inp(x))
        h = torch.sigmoid(self.gate(skip))
        h += skip  # the fault: in place on sigmoid's saved output; h = h + skip was meant
        return self.out(h)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
