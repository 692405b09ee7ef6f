"""Fault: an MLP whose forward applies torch.tanh functionally after layers initialised with std 2.5, so tanh sits at +-1.

Modelled on: the "vanishing gradients / my tanh network does not train" questions in which the author wrote
their own init with a large normal std (copying N(0, 1) or larger from a tutorial) and used torch.tanh in
forward(); the hidden units are saturated and their gradient is near zero. Data: 3 classes of 20-d vectors.

expect: saturated-activation
"""

import torch
from torch import nn

batch_size = 64
_CENTRES = 1.5 * torch.randn(3, 20, generator=torch.Generator().manual_seed(201))


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = _CENTRES[y] + torch.randn(n, 20, generator=g)
    return (x - x.mean(0)) / x.std(0), y


train_data = _data(2400, seed=0)
val_data = _data(480, seed=1)


class TanhNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 3)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=2.5)  # the fault: pre-activations with std ~10-20

    def forward(self, x):
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)
