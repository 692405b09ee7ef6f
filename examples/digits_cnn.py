"""A small CNN on synthetic 16x16 "digits", with one fault left in: the pixels are raw 0-255 values.

expect: unnormalized-inputs
Run: doctor check examples/digits_cnn.py --output-dir doctor-report
"""

import torch
from torch import nn

NUM_CLASSES = 10
batch_size = 64


def _make(n: int, seed: int):
    # Each class is a fixed random 16x16 template; samples are noisy copies, scaled to 0-255 pixels.
    g = torch.Generator().manual_seed(1234)
    templates = torch.rand(NUM_CLASSES, 1, 16, 16, generator=g)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    x = (templates[y] + 0.3 * torch.randn(n, 1, 16, 16, generator=g)).clamp(0, 1)
    return (x * 255).round(), y  # the fault: no normalisation to zero mean and unit variance


def train_data():
    return _make(4096, seed=0)


def val_data():
    return _make(512, seed=1)


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))

    def forward(self, x):
        return self.head(self.features(x))


def build_model():
    return DigitsCNN()


loss_fn = nn.CrossEntropyLoss()


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


if __name__ == "__main__":
    print("run `doctor check examples/digits_cnn.py`")
