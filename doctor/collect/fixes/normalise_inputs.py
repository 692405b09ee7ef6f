"""Standardise the inputs per feature (per channel for images and sequences) from the training batches."""

from __future__ import annotations

import dataclasses

import torch

from doctor.collect.fixes import NotApplicable


def _axes(x: torch.Tensor) -> tuple[int, ...]:
    # (N, C, ...) images and signals: one statistic per channel; (N, F) tables: per feature;
    # (N, T, F) sequences of vectors: per feature, over samples and steps.
    if x.dim() >= 4 or (x.dim() == 3 and x.shape[1] < x.shape[2]):
        return (0, *range(2, x.dim()))
    return tuple(range(x.dim() - 1))


def apply(ctx):
    xs = [x for x, _ in ctx.train_batches]
    if not xs or not all(isinstance(x, torch.Tensor) and x.is_floating_point() for x in xs):
        raise NotApplicable("the inputs are not floating-point tensors (token ids or structured inputs)")
    axes = _axes(xs[0])
    data = torch.cat(xs).double()
    mean = data.mean(dim=axes, keepdim=True)
    std = data.std(dim=axes, keepdim=True).clamp_min(1e-8)
    before = float(data.std())

    def norm(batches):
        return [(((x.double() - mean) / std).to(x.dtype), y) for x, y in batches]

    train = norm(ctx.train_batches)
    # The data probes read the loader: give them the standardised batches (a list iterates like one).
    fixed = dataclasses.replace(ctx, train_batches=train, val_batches=norm(ctx.val_batches), cache={},
                                train_loader=list(train) if ctx.train_loader is not None else None,
                                val_loader=None)
    return fixed, (f"inputs standardised with {mean.numel()} per-{'channel' if len(axes) > 1 else 'feature'} "
                   f"means and deviations from the training batches (overall spread {before:.3g} → 1)")
