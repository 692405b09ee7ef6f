"""Fault: a token tagger outputs (N, T, C) scores and CrossEntropyLoss is given them with (N, T) tags, unreshaped.

Modelled on: the StackOverflow question "Expected target size (32, 6), got torch.Size([32, 16])" from an NER /
POS tagger: CrossEntropyLoss wants the classes in dim 1, i.e. (N, C, T), or flattened (N*T, C) vs (N*T,).
Data: 16-token sequences whose tag is the token's id bucket, 6 tags.

expect: loss-shape-mismatch
"""

import torch
from torch import nn

batch_size = 32
VOCAB, LENGTH, TAGS = 60, 16, 6


def _sentences(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
    return ids, ids // 10


train_data = _sentences(2000, seed=0)
val_data = _sentences(400, seed=1)
loss_fn = nn.CrossEntropyLoss()  # the fault: given (N, T, C) and (N, T); needs output.transpose(1, 2)


class ConvTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.conv = nn.Conv1d(32, 48, 3, padding=1)
        self.head = nn.Linear(48, TAGS)

    def forward(self, ids):
        h = torch.relu(self.conv(self.embed(ids).transpose(1, 2))).transpose(1, 2)
        return self.head(h)  # (N, T, C)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
