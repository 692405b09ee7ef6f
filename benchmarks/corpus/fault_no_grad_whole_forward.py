"""Fault: a model meant to freeze its feature extractor wraps its whole forward, head included, in torch.no_grad().

Modelled on: the forum question "RuntimeError: element 0 of tensors does not require grad and does not have
a grad_fn" from transfer-learning code, where the no_grad block was meant for the backbone only and the
classifier call ended up inside it. Data: 3 classes of 32-d "image embeddings".

expect: loss-without-grad | detached-output
"""

import torch
from torch import nn

batch_size = 64
_CENTRES = 2.0 * torch.randn(3, 32, generator=torch.Generator().manual_seed(41))


def _embeddings(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = _CENTRES[y] + 1.5 * torch.randn(n, 32, generator=g)
    return (x - x.mean(0)) / x.std(0), y


train_data = _embeddings(2400, seed=0)
val_data = _embeddings(480, seed=1)


class FrozenBackboneClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.classifier = nn.Linear(64, 3)

    def forward(self, x):
        with torch.no_grad():
            features = self.backbone(x)
            return self.classifier(features)  # the fault: the head is inside the no_grad block too


def optimizer(model):
    return torch.optim.Adam(model.classifier.parameters(), lr=1e-3)
