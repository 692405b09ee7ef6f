"""Fault: a classifier ending in nn.Softmax trained with MSELoss against one-hot target vectors.

Modelled on: the "my classifier learns very slowly with MSE, should I use CrossEntropy?" questions from
people coming from Keras tutorials (softmax output + mean squared error on one-hot labels): the gradient
through softmax vanishes as soon as a class is confidently wrong. Data: 6 classes of 20-d vectors, the
dataset stores one-hot float targets.

expect: regression-loss-on-probabilities
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_CENTRES = 1.2 * torch.randn(6, 20, generator=torch.Generator().manual_seed(91))


def _samples(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 6, (n,), generator=g)
    x = _CENTRES[y] + torch.randn(n, 20, generator=g)
    return (x - x.mean(0)) / x.std(0), F.one_hot(y, 6).float()


train_loader = DataLoader(TensorDataset(*_samples(2400, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_samples(480, seed=1)), batch_size=64)
loss_fn = nn.MSELoss()  # the fault: regression loss on probabilities; CrossEntropyLoss on logits was meant


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 6), nn.Softmax(dim=1))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
