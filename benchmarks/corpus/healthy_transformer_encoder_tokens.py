"""Healthy: a 2-layer nn.TransformerEncoder over token ids (embedding + learned positions, mean pooling), 4 topics, AdamW.

Modelled on: forum questions on "text classification with nn.TransformerEncoder from scratch" (batch_first,
pooling over tokens, a linear head); topics are synthetic: each topic draws more often from its own keyword
block of the vocabulary.

expect: clean
"""

import torch
from torch import nn

batch_size = 32
VOCAB, LENGTH, TOPICS = 120, 16, 4


def _docs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, TOPICS, (n,), generator=g)
    ids = torch.randint(40, VOCAB, (n, LENGTH), generator=g)  # background words
    keywords = torch.randint(0, 10, (n, LENGTH), generator=g) + 10 * y[:, None]
    pick = torch.rand(n, LENGTH, generator=g) < 0.3
    return torch.where(pick, keywords, ids), y


train_data = _docs(2000, seed=0)
val_data = _docs(400, seed=1)


class TopicTransformer(nn.Module):
    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.pos = nn.Parameter(torch.zeros(1, LENGTH, dim))
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, TOPICS)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids) + self.pos).mean(dim=1))


def optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
