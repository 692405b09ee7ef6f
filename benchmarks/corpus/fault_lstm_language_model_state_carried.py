"""Fault: a character-level LSTM language model whose train_step carries (h, c) into the next batch without detaching it.

Modelled on: the truncated-BPTT question asked again and again: "Trying to backward through the graph a second
time (or directly access saved tensors after they have already been freed)" on the second batch, because
the hidden state still references the previous batch's freed graph; the answer is h.detach(), c.detach().
Data: a 12-symbol stream from a noisy repeating pattern, cut into 24-step windows predicting the next symbol.

expect: backward-twice
"""

import torch
import torch.nn.functional as F
from torch import nn

batch_size = 32
SYMBOLS, STEPS = 12, 24
_state = {}


def _stream(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, SYMBOLS, (n, 1), generator=g)
    seq = (start + 5 * torch.arange(STEPS + 1)) % SYMBOLS
    noise = torch.rand(n, STEPS + 1, generator=g) < 0.05
    seq = torch.where(noise, torch.randint(0, SYMBOLS, seq.shape, generator=g), seq)
    return seq[:, :-1], seq[:, 1:]


train_data = _stream(2048, seed=0)


def loss_fn(logits, target):
    return F.cross_entropy(logits.reshape(-1, SYMBOLS), target.reshape(-1))


class CharLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(SYMBOLS, 16)
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.head = nn.Linear(64, SYMBOLS)

    def forward(self, ids, state=None):
        out, state = self.lstm(self.embed(ids), state)
        self.last_state = state
        return self.head(out)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    state = _state.get(id(model))
    if state is not None and state[0].shape[1] != x.shape[0]:
        state = None  # a batch of another size starts afresh
    optimizer.zero_grad()
    loss = loss_fn(model(x, state), y)
    loss.backward()
    optimizer.step()
    _state[id(model)] = model.last_state  # the fault: kept with its graph; detach h and c
    return loss.item()
