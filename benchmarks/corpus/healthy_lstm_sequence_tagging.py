"""Healthy: per-token sequence tagging (bidirectional LSTM, output (N, T, 5)), the loss flattening tokens into rows.

Modelled on: forum questions about POS/NER-style tagging where the answer is to reshape the (N, T, C)
scores and (N, T) tags to (N*T, C) and (N*T,) before CrossEntropyLoss; this does exactly that. Each tag
depends on the token and its left neighbour.

expect: clean
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 32
VOCAB, LENGTH, TAGS = 100, 20, 5


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
    left = torch.cat([torch.zeros(n, 1, dtype=torch.long), ids[:, :-1]], 1)
    tags = (ids // 20 + (left >= 50).long()) % TAGS
    return ids, tags


train_data = _data(2000, seed=0)
val_data = _data(400, seed=1)


def loss_fn(output, target):
    return F.cross_entropy(output.reshape(-1, TAGS), target.reshape(-1))


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.rnn = nn.LSTM(32, 48, batch_first=True, bidirectional=True)
        self.head = nn.Linear(96, TAGS)

    def forward(self, ids):
        out, _ = self.rnn(self.embed(ids))
        return self.head(out)


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
