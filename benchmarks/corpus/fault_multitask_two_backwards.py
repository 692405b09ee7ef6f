"""Fault: a two-head multi-task model whose train_step calls backward() on each head's loss through one shared encoder pass.

Modelled on: the forum question "Trying to backward through the graph a second time" from multi-task code:
loss_a.backward() frees the shared encoder's graph and loss_b.backward() needs it; the answer is
(loss_a + loss_b).backward() (or retain_graph=True on the first). Data: one 12-d input, a 3-class label
and a regression target.

expect: backward-twice
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 64
_W = torch.randn(12, 3, generator=torch.Generator().manual_seed(81))


def _tasks(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    return x, (x @ _W + 0.3 * torch.randn(n, 3, generator=g)).argmax(1)


train_data = _tasks(2400, seed=0)
val_data = _tasks(480, seed=1)
loss_fn = nn.CrossEntropyLoss()


class MultiTask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.cls_head = nn.Linear(64, 3)
        self.reg_head = nn.Linear(64, 1)

    def forward(self, x):
        return self.cls_head(self.encoder(x))


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    features = model.encoder(x)
    cls_loss = loss_fn(model.cls_head(features), y)
    reg_loss = F.mse_loss(model.reg_head(features).squeeze(1), x[:, :3].sum(1))
    cls_loss.backward()
    reg_loss.backward()  # the fault: the shared encoder's graph was freed by the first backward
    optimizer.step()
    return cls_loss.detach() + reg_loss.detach()
