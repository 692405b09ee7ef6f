"""Loss at initialisation against the loss of a model that predicts uniformly."""

from __future__ import annotations

import math

import torch

from doctor.collect.context import expected_init_loss, model_output
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.metrics import Series


def run(ctx) -> None:
    if ctx.synthetic:
        raise SkipProbe(NO_TRAIN)
    model = ctx.fresh_model()
    batches = ctx.train_batches[: ctx.budget.init_batches]
    # Train mode, as the first step sees it: BatchNorm uses batch statistics, not its blank running ones.
    with torch.no_grad():
        losses = torch.stack([ctx.compute_loss(model_output(model, x), y).float() for x, y in batches])
    values = losses.tolist()  # one read for all batches
    mean = sum(values) / len(values)
    sc = ctx.metrics.scalars
    sc["init.loss"] = mean
    sc["init.nonfinite"] = not math.isfinite(mean)
    expected = expected_init_loss(ctx.task, ctx.num_outputs)
    if expected is None:
        return  # regression: no loss to expect without knowing the targets' scale
    sc["init.expected_loss"] = expected
    if math.isfinite(mean):
        sc["init.loss_ratio"] = mean / expected
    ctx.metrics.series["init.loss"] = Series(
        x=list(range(len(values))), y=values, x_label="batch", y_label="loss at initialisation", reference=expected)


PROBE = Probe(name="init_loss", doc="Mean loss of the untrained model against ln(C) (or ln 2 for binary labels).",
              run=run, needs_data=True, cost="2 / 4 / 8 forward passes (quick / standard / deep)", order=20)
