"""Unshuffled data: the training loader's labels come in long runs instead of mixed.

Counts label changes between consecutive samples in the loader's order and compares them with
shuffled orders of the same labels, so class imbalance (few changes even when shuffled) is not
mistaken for order.
"""

from __future__ import annotations

import torch

from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import required_scan
from doctor.metrics import Series

PERMUTATIONS = 32
MAX_BARS = 200


def _changes(labels: torch.Tensor) -> int:
    return int((labels[1:] != labels[:-1]).sum())


def _majority_share(labels: torch.Tensor, sizes: list[int]) -> list[float]:
    out, start = [], 0
    for n in sizes[:MAX_BARS]:
        chunk = labels[start: start + n]
        start += n
        if chunk.numel():
            out.append(float(torch.bincount(chunk).max()) / chunk.numel())
    return out


def run(ctx) -> None:
    if ctx.task not in ("classification", "binary"):
        raise SkipProbe(f"not a classification task ({ctx.task}): no labels whose order to follow")
    train = required_scan(ctx, "train")
    if train.labels is None:
        raise SkipProbe("the training targets are not one class label per sample")
    labels = train.labels[train.labels >= 0]
    n = labels.numel()
    if n < 16 or torch.unique(labels).numel() < 2:
        raise SkipProbe("fewer than 16 labelled training samples, or a single class: no order to judge")
    observed = _changes(labels)
    g = torch.Generator().manual_seed(ctx.seed)
    shuffled = torch.tensor([float(_changes(labels[torch.randperm(n, generator=g)])) for _ in range(PERMUTATIONS)])
    mu, sd = float(shuffled.mean()), float(shuffled.std())
    bounds = torch.cat([torch.tensor([0]), (labels[1:] != labels[:-1]).nonzero().flatten() + 1, torch.tensor([n])])
    runs = bounds[1:] - bounds[:-1]
    k = int(runs.argmax())
    batch = max(train.batch_sizes[0], 1) if train.batch_sizes else 1
    sc = ctx.metrics.scalars
    sc.update({
        "data.order_samples": n,
        "data.order_change_ratio": observed / mu if mu > 0 else 1.0,
        # A floor on the spread: with very few expected changes a z-score would overstate a small deficit.
        "data.order_change_z": (observed - mu) / max(sd, 1.0),
        "data.order_longest_run": int(runs[k]),
        "data.order_longest_run_batches": float(runs[k]) / batch,
        "data.order_run_label": str(int(labels[int(bounds[k])])),
    })
    if len(train.batch_sizes) >= 2 and n == train.samples:
        shares = _majority_share(labels, train.batch_sizes)
        mixed = _majority_share(labels[torch.randperm(n, generator=g)], train.batch_sizes)
        ctx.metrics.series["data.order_batch_majority"] = Series(
            x=list(range(1, len(shares) + 1)), y=shares, x_label="training batch (loader order)",
            y_label="share of the most common label", reference=sum(mixed) / len(mixed))


PROBE = Probe(name="data_order", doc="Follows the training labels in the loader's order and counts label changes "
              "against shuffled orders of the same labels.", run=run, needs_model=False, needs_data=True, order=15,
              cost="the shared pass over the training samples; no steps")
