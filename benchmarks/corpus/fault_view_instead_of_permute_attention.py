"""Fault: batch-first (N, L, E) token embeddings reshaped with .view(L, N, E) for a sequence-first nn.MultiheadAttention.

Modelled on: the GitHub/forum reports "my transformer's predictions depend on what else is in the batch" /
"results change with batch size", where x.view(seq, batch, dim) was used in place of x.transpose(0, 1):
view keeps the memory order, so every "sequence" it makes is stitched from several samples. Data: 10-token
sequences whose label is whether token 7 occurs more often than token 3.

expect: batch-dependence
"""

import torch
from torch import nn

batch_size = 32
VOCAB, LENGTH = 20, 10


def _sequences(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=g)
    return ids, ((ids == 7).sum(1) > (ids == 3).sum(1)).long()


train_data = _sequences(2400, seed=0)
val_data = _sequences(480, seed=1)


class AttentionClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.attn = nn.MultiheadAttention(32, 4)  # sequence-first: (L, N, E)
        self.head = nn.Linear(32, 2)

    def forward(self, ids):
        x = self.embed(ids)
        n, length, dim = x.shape
        x = x.view(length, n, dim)  # the fault: mixes samples; x.transpose(0, 1) was meant
        out, _ = self.attn(x, x, x)
        return self.head(out.mean(0))


def optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
