"""Healthy: an MLP whose forward uses F.relu and F.dropout(training=self.training), trained by a plain custom train_step, RMSprop.

Modelled on: the many posts whose models are written functionally (F.relu in forward rather than nn.ReLU
modules) with a hand-written training loop; the activations are healthy here. Labels: 8 Gaussian
clusters, two per class.

expect: clean
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 64
_CENTRES = 2.5 * torch.randn(8, 10, generator=torch.Generator().manual_seed(5))


def _clusters(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 8, (n,), generator=g)
    x = _CENTRES[k] + torch.randn(n, 10, generator=g)
    return (x - x.mean(0)) / x.std(0), k % 4


train_data = _clusters(3000, seed=0)
val_data = _clusters(600, seed=1)
loss_fn = nn.CrossEntropyLoss()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 4)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.1, training=self.training)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def optimizer(model):
    return torch.optim.RMSprop(model.parameters(), lr=1e-3)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()
