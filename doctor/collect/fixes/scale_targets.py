"""Standardise the regression targets per column from the training batches (mean 0, deviation 1)."""

from __future__ import annotations

import dataclasses

import torch

from doctor.collect.fixes import NotApplicable

# The loss is now in standardised units, so its final value says nothing against the raw one: compare
# how much of its starting value each run removed.
COMPARE = "loss.train_rel_drop"


def apply(ctx):
    if ctx.task != "regression":
        raise NotApplicable(f"the task is {ctx.task}, not regression")
    ys = [y for _, y in ctx.train_batches]
    if not ys or not all(isinstance(y, torch.Tensor) and y.is_floating_point() for y in ys):
        raise NotApplicable("the targets are not floating-point tensors")
    data = torch.cat(ys).double()
    axes = tuple(range(data.dim() - 1)) if data.dim() > 1 else (0,)
    mean = data.mean(dim=axes, keepdim=True)
    std = data.std(dim=axes, keepdim=True).clamp_min(1e-8)

    def scaled(batches):
        return [(x, ((y.double() - mean) / std).to(y.dtype)) for x, y in batches]

    train = scaled(ctx.train_batches)
    fixed = dataclasses.replace(ctx, train_batches=train, val_batches=scaled(ctx.val_batches), cache={},
                                train_loader=list(train) if ctx.train_loader is not None else None, val_loader=None)
    cols = mean.numel()
    what = (f"mean {float(mean.flatten()[0]):.3g}, deviation {float(std.flatten()[0]):.3g}" if cols == 1
            else f"{cols} columns, deviations {float(std.min()):.3g} to {float(std.max()):.3g}")
    return fixed, f"targets standardised with the training batches' statistics ({what} → 0 and 1)"
