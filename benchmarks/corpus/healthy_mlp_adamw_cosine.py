"""Healthy: an MLP with LayerNorm and dropout, AdamW (weight decay 0.05) under a CosineAnnealingLR schedule.

Modelled on: the "what's a good default recipe for a tabular MLP?" answers (AdamW, cosine decay, LayerNorm,
some dropout); the scheduler is built in the optimizer factory, as a training script would build it. Data:
a 7-class problem from a random two-layer teacher network on 18 standardised features.

expect: clean
"""

import torch
from torch import nn

batch_size = 128
_g = torch.Generator().manual_seed(211)
_T1, _T2 = torch.randn(18, 32, generator=_g), torch.randn(32, 7, generator=_g)
_schedulers = []  # kept so each scheduler lives as long as its optimizer


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 18, generator=g)
    logits = torch.tanh(x @ _T1 / 4) @ _T2
    return x, (logits + 0.3 * torch.randn(n, 7, generator=g)).argmax(1)


train_data = _data(4000, seed=0)
val_data = _data(800, seed=1)
loss_fn = nn.CrossEntropyLoss()


def build_model():
    return nn.Sequential(nn.Linear(18, 128), nn.LayerNorm(128), nn.GELU(), nn.Dropout(0.1),
                         nn.Linear(128, 128), nn.LayerNorm(128), nn.GELU(), nn.Dropout(0.1),
                         nn.Linear(128, 7))


def optimizer(model):
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    _schedulers.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2000, eta_min=1e-5))
    return opt
