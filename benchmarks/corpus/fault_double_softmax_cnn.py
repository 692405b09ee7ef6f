"""Fault: a CNN whose forward returns F.softmax(logits, dim=1), trained with CrossEntropyLoss (which applies log-softmax itself).

Modelled on: the frequent "my loss is stuck around 1.9 / decreases very slowly" questions on MNIST-style CNNs
where the network's last line is a softmax and the criterion is nn.CrossEntropyLoss; the doubled softmax
caps the gradient and the loss floor. Data: 1x16x16 images of 6 glyph-like random templates under noise.

expect: double-softmax
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 64
_TEMPLATES = (torch.rand(6, 16, 16, generator=torch.Generator().manual_seed(131)) > 0.6).float()


def _glyphs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 6, (n,), generator=g)
    x = _TEMPLATES[y] + 0.8 * torch.randn(n, 16, 16, generator=g)
    return ((x - x.mean()) / x.std()).unsqueeze(1), y


train_data = _glyphs(2400, seed=0)
val_data = _glyphs(480, seed=1)
loss_fn = nn.CrossEntropyLoss()


class GlyphCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 6)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.softmax(self.fc(x.flatten(1)), dim=1)  # the fault: CrossEntropyLoss wants the logits


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
