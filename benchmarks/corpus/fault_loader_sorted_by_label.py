"""Fault: the training set is built class by class (all 0s, then all 1s, ...) and the DataLoader has shuffle=False.

Modelled on: questions like "validation accuracy is fine after epoch 1 but the model only predicts the last
class" or "my loss curve has a sawtooth every epoch", from datasets read folder by folder (ImageFolder-style)
into a loader without shuffling. Data: 4 classes of 16-d vectors, concatenated in label order.

expect: unshuffled-data
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_CENTRES = 1.5 * torch.randn(4, 16, generator=torch.Generator().manual_seed(151))


def _by_folder(n_per_class: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for label in range(4):  # one "folder" after another
        xs.append(_CENTRES[label] + torch.randn(n_per_class, 16, generator=g))
        ys.append(torch.full((n_per_class,), label))
    x = torch.cat(xs)
    return (x - x.mean(0)) / x.std(0), torch.cat(ys)


train_loader = DataLoader(TensorDataset(*_by_folder(600, seed=0)), batch_size=32)  # the fault: no shuffle
val_loader = DataLoader(TensorDataset(*_by_folder(120, seed=1)), batch_size=32)


def build_model():
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05)
