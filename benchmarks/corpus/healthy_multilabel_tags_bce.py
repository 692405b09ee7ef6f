"""Healthy: multi-label tagging (5 independent tags, each an XOR of two feature signs), LayerNorm+GELU MLP, BCEWithLogitsLoss.

Modelled on: forum threads asking how to set up multi-label classification ("use BCEWithLogitsLoss with
multi-hot float targets, not CrossEntropyLoss"); this is the recommended setup.

expect: clean
"""

import torch
from torch import nn

batch_size = 64
task = "multilabel"


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    tags = (x[:, 0:10:2] * x[:, 1:10:2] > 0).float()  # tag k: features 2k and 2k+1 have the same sign
    return x, tags


train_data = _data(4000, seed=0)
val_data = _data(800, seed=1)
loss_fn = nn.BCEWithLogitsLoss()


def build_model():
    return nn.Sequential(nn.Linear(20, 128), nn.LayerNorm(128), nn.GELU(), nn.Linear(128, 64), nn.GELU(),
                         nn.Linear(64, 5))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
