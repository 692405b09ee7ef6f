"""Healthy: sentiment of token sequences (Embedding + GRU, last hidden state, 2 classes) from a shuffled DataLoader.

Modelled on: the recurring "GRU/LSTM sentiment classifier on IMDB-like data" forum questions; here the
"reviews" are synthetic: the label says whether positive words (ids 10-59) outnumber negative ones (60-109).

expect: clean
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH = 400, 24


def _reviews(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(110, VOCAB, (n, LENGTH), generator=g)  # neutral words
    n_pos = torch.randint(0, 6, (n,), generator=g)
    n_neg = torch.randint(0, 6, (n,), generator=g)
    n_neg = torch.where(n_neg == n_pos, (n_pos + 1) % 6, n_neg)  # never a tie
    slots = torch.rand(n, LENGTH, generator=g).argsort(1)
    for i in range(n):
        p, q = int(n_pos[i]), int(n_neg[i])
        ids[i, slots[i, :p]] = torch.randint(10, 60, (p,), generator=g)
        ids[i, slots[i, p:p + q]] = torch.randint(60, 110, (q,), generator=g)
    return ids, (n_pos > n_neg).long()


train_loader = DataLoader(TensorDataset(*_reviews(3000, seed=0)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(TensorDataset(*_reviews(600, seed=1)), batch_size=64)


class SentimentGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.rnn = nn.GRU(32, 64, batch_first=True)
        self.head = nn.Linear(64, 2)

    def forward(self, ids):
        _, h = self.rnn(self.embed(ids))
        return self.head(h[-1])


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)
