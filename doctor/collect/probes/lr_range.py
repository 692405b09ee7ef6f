"""Learning-rate range test: raise the rate exponentially step by step and watch where the loss falls fastest.

From the initial weights, with the target's optimizer, each step multiplies every parameter group's
rate by the same factor (keeping their ratios). The loss against the rate shows a valley; the rate
at its bottom is where updates start to overshoot, and a tenth of it is the customary pick. The
sweep stops once the loss has clearly diverged.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from doctor.collect.data import cycle
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.metrics import Series

LOWEST, HIGHEST = 1e-4, 10.0  # the sweep always covers these, and reaches 30x past the configured rate
MARGIN = 30.0
SMOOTH = 0.5  # exponential smoothing (bias-corrected) after a running median of 3: one odd batch picks nothing
DIVERGED = 4.0  # the smoothed loss above this many times its lowest value (and above the start) ends the sweep
SUGGEST = 0.1  # suggested rate: a tenth of the rate at the valley's bottom


def sweep_bounds(lr: float) -> tuple[float, float]:
    return min(LOWEST, lr / MARGIN), max(HIGHEST, lr * MARGIN)


def smooth(values: list[float]) -> list[float]:
    med = [sorted(values[max(0, i - 1): i + 2])[len(values[max(0, i - 1): i + 2]) // 2] for i in range(len(values))]
    out, avg = [], 0.0
    for i, v in enumerate(med):
        avg = SMOOTH * avg + (1 - SMOOTH) * v
        out.append(avg / (1 - SMOOTH ** (i + 1)))
    return out


def analyse(rates: list[float], losses: list[float], configured: Optional[float] = None) -> dict[str, float]:
    """Valley of a (rate, loss) sweep: start level, lowest smoothed loss and its rate, where it diverged."""
    # Only the finite prefix counts: after a NaN the optimizer state is poisoned.
    n = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses))
    out: dict[str, float] = {}
    if n < 4:
        return out
    s = smooth(losses[:n])
    k = min(3, n)
    start = sum(losses[:k]) / k
    best = min(range(n), key=s.__getitem__)
    out["lr.loss_start"] = start
    out["lr.loss_min"] = s[best]
    out["lr.best"] = rates[best]
    out["lr.suggested"] = rates[best] * SUGGEST
    if start > 0:
        out["lr.min_loss_ratio"] = s[best] / start
    if configured is not None and configured > 0:
        out["lr.configured_ratio"] = configured / out["lr.suggested"]
    lowest = s[0]
    for i in range(n):
        lowest = min(lowest, s[i])
        if i > best and s[i] > DIVERGED * lowest and s[i] > start:
            out["lr.diverge"] = rates[i]
            break
    else:
        # A NaN counts as divergence when the loss was already climbing, or came a decade past the
        # valley; an abrupt NaN at a rate that was doing fine points at the data or the model instead.
        if n < len(losses) and (s[n - 1] > 1.5 * s[best] or rates[n] >= 10 * rates[best]):
            out["lr.diverge"] = rates[n]
    out["lr.at_edge"] = best >= n - 2 and n == len(losses) and "lr.diverge" not in out
    return out


def run(ctx) -> None:
    if ctx.synthetic:
        raise SkipProbe(NO_TRAIN)
    sc = ctx.metrics.scalars
    if (sc.get("data.input_nonfinite_frac") or 0) > 0 or (sc.get("data.target_nonfinite_frac") or 0) > 0:
        raise SkipProbe("the data holds NaN or infinite values; a sweep would only find them "
                        "(see the invalid-values finding)")
    model = ctx.fresh_model()
    model.zero_grad(set_to_none=True)
    opt = ctx.make_optimizer(model)
    base = [g.get("lr") for g in opt.param_groups]
    if not base or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 for b in base):
        raise SkipProbe("the optimizer has no positive numeric learning rate to sweep")
    lr0 = float(base[0])
    lo, hi = sweep_bounds(lr0)
    per_decade = ctx.budget.lr_steps_per_decade
    steps = max(8, math.ceil(math.log10(hi / lo) * per_decade) + 1)
    rates = [lo * (hi / lo) ** (i / (steps - 1)) for i in range(steps)]
    dev = ctx.device
    losses = torch.full((steps,), float("nan"), device=dev)
    batches = cycle(ctx.train_batches)
    check = max(per_decade, 3)
    step_fn = ctx.step_fn()
    ran = 0
    for step, rate in enumerate(rates):
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * rate / lr0
        loss = step_fn(model, next(batches), opt)
        losses[step] = loss.detach().float()
        ran = step + 1
        if ran % check == 0 and ran < steps:
            # One host read per decade of rates: has the sweep diverged far enough to stop?
            done = losses[:ran].tolist()
            if _diverged(done):
                break
    values = losses[:ran].tolist()
    model.zero_grad(set_to_none=True)
    if not all(math.isfinite(v) for v in values[:3]):
        raise SkipProbe(f"the loss is NaN or infinite from the first steps, at a rate of {lo:.0e}: no rate "
                        "would fix that (see the nan-loss and invalid-values findings)")
    found = analyse(rates[:ran], values, lr0)
    sc["lr.steps"] = ran
    sc["lr.sweep_low"], sc["lr.sweep_high"] = lo, hi
    sc.update(found)
    # The configured rate at or past the rate where the sweep's loss blew up: a plain verdict, so a
    # sweep that never diverged still decides the rule (False) instead of leaving it unmeasured.
    sc["lr.configured_diverges"] = "lr.diverge" in found and lr0 >= found["lr.diverge"]
    shown = [(r, v) for r, v in zip(rates, values) if math.isfinite(v)]
    if shown:
        ctx.metrics.series["lr.range"] = Series(
            x=[r for r, _ in shown], y=[v for _, v in shown], x_label="learning rate", y_label="training loss",
            log_y=max(v for _, v in shown) > 30 * max(min(v for _, v in shown), 1e-12))


def _diverged(values: list[float]) -> bool:
    if any(not math.isfinite(v) for v in values):
        return True
    s = smooth(values)
    start = sum(values[:3]) / min(3, len(values))
    best = min(range(len(s)), key=s.__getitem__)
    return any(s[i] > DIVERGED * s[best] and s[i] > start for i in range(best + 1, len(s)))


PROBE = Probe(
    name="lr_range",
    doc="Learning-rate range test: from the initial weights, raises the optimizer's rate exponentially each "
        "step (from 1e-4, or 30x below the configured rate, to 10, or 30x above it) and records the loss; "
        "reports the rate at the bottom of "
        "the loss valley, a suggested rate (a tenth of it) and where the loss diverged.",
    run=run, needs_data=True, order=58,
    cost="3 / 5 / 10 steps per decade of rates, about 20 / 30 / 60 steps (quick / standard / deep); "
         "stops at divergence")
