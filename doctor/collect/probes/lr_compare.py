"""Rate comparison: when the range test says the configured rate is far too low, train at 30x it and compare.

A slow descent is not by itself a fault; a descent that a rate 30 times higher beats by far is. From
the same initial weights and on the same batches, two short runs of doctor's step, one at the
configured rate and one at 30x it, are judged by the loss on the same held batches before and
after. It runs only when the range test's suggestion is at least 30x the configured rate, so a
well-set rate costs nothing.
"""

from __future__ import annotations

import math

import torch

from doctor.collect.context import model_output
from doctor.collect.data import cycle
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.probes.overfit_batch import train_mode_without_dropout
from doctor.collect.scan import NO_TRAIN

FACTOR = 30.0  # the higher rate, as a multiple of the configured one
MAX_STEPS = 30  # steps per run (at most the budget's training burst)


def _held_loss(ctx, model, batches) -> torch.Tensor:
    """Mean loss over `batches`, without dropout and without a gradient; BatchNorm on batch statistics."""
    train_mode_without_dropout(model)
    with torch.no_grad():
        total = torch.stack([ctx.compute_loss(model_output(model, x), y).float() for x, y in batches]).mean()
    model.train()
    return total


def _run(ctx, scale: float, steps: int, held) -> torch.Tensor:
    model = ctx.fresh_model()
    model.zero_grad(set_to_none=True)
    opt = ctx.make_optimizer(model)
    for g in opt.param_groups:
        g["lr"] = g["lr"] * scale
    step_fn = ctx.step_fn()
    batches = cycle(ctx.train_batches)
    for _ in range(steps):
        step_fn(model, next(batches), opt)
    model.zero_grad(set_to_none=True)
    return _held_loss(ctx, model, held)


def run(ctx) -> None:
    if ctx.synthetic:
        raise SkipProbe(NO_TRAIN)
    sc = ctx.metrics.scalars
    ratio = sc.get("lr.configured_ratio")
    if not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
        raise SkipProbe("the range test found no suggested rate to compare with")
    if ratio > 1 / FACTOR:
        raise SkipProbe(f"the configured rate is within {FACTOR:.0f}x of the range test's suggestion")
    if ctx.full_budget is not None:  # two more runs of up to 30 steps each: the first thing a cut plan drops
        raise SkipProbe("the budget was cut to fit its time, and the rate comparison trains twice more")
    lr = sc.get("setup.lr")
    steps = max(5, min(MAX_STEPS, ctx.budget.train_steps))
    held = ctx.train_batches[: ctx.budget.eval_batches]
    start = _held_loss(ctx, ctx.fresh_model(), held)
    configured = _run(ctx, 1.0, steps, held)
    higher = _run(ctx, FACTOR, steps, held)
    l0, lc, lh = torch.stack([start, configured, higher]).tolist()  # the probe's one read
    ctx.fresh_model()
    sc["lrc.steps"] = steps
    sc["lrc.factor"] = FACTOR
    if isinstance(lr, (int, float)):
        sc["lrc.rate"] = lr * FACTOR
    sc["lrc.loss_start"] = l0
    sc["lrc.loss_configured"] = lc
    sc["lrc.loss_higher"] = lh
    if math.isfinite(l0) and l0 > 0:
        sc["lrc.descent_configured"] = (l0 - lc) / l0 if math.isfinite(lc) else -math.inf
        sc["lrc.descent_higher"] = (l0 - lh) / l0 if math.isfinite(lh) else -math.inf


PROBE = Probe(
    name="lr_compare",
    doc="When the range test suggests a rate at least 30x the configured one: trains from the initial weights "
        "for up to 30 steps at the configured rate and at 30x it, on the same batches, and compares how far "
        "each lowered the loss on the same held training batches.",
    run=run, needs_data=True, order=59,
    cost="none when the rate is within 30x of the suggestion; otherwise 2 x 20 / 30 / 30 steps "
         "(quick / standard / deep)")
