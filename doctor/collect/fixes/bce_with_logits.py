"""Train 0/1 targets (one or several labels per sample) with BCEWithLogitsLoss on the raw scores."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from doctor.collect.fixes import NotApplicable, _yardstick, strip_output_activation, with_model
from doctor.collect.fixes.cross_entropy import loss_edits
from doctor.collect.fixes.remove_output_activation import activation_edits

# A different loss: both setups train the same burst and are scored alike on validation (fixes/_yardstick.py);
# the static checks are re-run to see whether the rule still fires.
COMPARE = _yardstick.AUC
PROBES = ("static",)


def measure(ctx, fixed):
    return _yardstick.measure(ctx, fixed, _yardstick.AUC)
RENAMES = {"CrossEntropyLoss": "BCEWithLogitsLoss", "BCELoss": "BCEWithLogitsLoss",
           "cross_entropy": "binary_cross_entropy_with_logits", "binary_cross_entropy": "binary_cross_entropy_with_logits"}


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.shape != out.shape:
        y = y.reshape(out.shape)  # (N,) labels for one output
    return F.binary_cross_entropy_with_logits(out, y.to(out.dtype))


def apply(ctx):
    if ctx.setup.train_step is not None:
        raise NotApplicable("the target's own train_step computes the loss, where doctor cannot swap it")
    x, y = ctx.train_batches[0]
    out_rows = ctx.num_outputs * int(y.shape[0])
    if y.numel() != out_rows or not bool(((y == 0) | (y == 1)).all()):
        raise NotApplicable("the targets are not one 0/1 value per output (class indices for several outputs "
                            "need cross-entropy)")
    removed: list[str] = []

    def change(model) -> int:
        name = strip_output_activation(model)
        removed.extend([name] if name else [])
        return 1

    fixed, _ = with_model(ctx, change)
    fixed = dataclasses.replace(fixed, loss_fn=_loss, task="binary" if ctx.num_outputs == 1 else ctx.task)
    said = "the loss replaced by BCEWithLogitsLoss on the raw scores (one independent sigmoid per output)"
    return fixed, said + (f", {removed[0]} replaced by Identity" if removed else "")


def edit(ctx) -> list:
    sc = ctx.metrics.scalars
    # Class labels of shape (N,) for one output need a reshape and a cast as well: no one-line diff says that.
    if sc.get("static.loss_input_shape") != sc.get("static.loss_target_shape"):
        return []
    return loss_edits(ctx, RENAMES, strip_float=False) + activation_edits(ctx)
