"""Fault: a forward that post-processes its output in numpy and wraps the result back with torch.from_numpy.

Modelled on: questions like "my loss has no grad_fn after I used numpy in forward()" and "Can't call numpy()
on Tensor that requires grad. Use tensor.detach().numpy()": the asker added .detach() to silence the second
error, which cut the graph, so backward() then fails (or nothing trains). Data: 4-class wine-quality-like
table of 11 features.

expect: loss-without-grad | detached-output
"""

import torch
from torch import nn

batch_size = 64
_W = torch.randn(11, 4, generator=torch.Generator().manual_seed(51))


def _wines(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 11, generator=g)
    return x, (x @ _W + 0.4 * torch.randn(n, 4, generator=g)).argmax(1)


train_data = _wines(2400, seed=0)
val_data = _wines(480, seed=1)


class WineNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(11, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, x):
        scores = self.body(x).detach().numpy()  # the fault: leaves autograd
        scores = scores - scores.max(axis=1, keepdims=True)  # "for numerical stability"
        return torch.from_numpy(scores)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
