"""Fit the probes' work into the time a budget allows, from the measured cost of one training step.

A budget counts steps; what the user waits for is seconds. After prepare has timed one forward and
backward pass, `fit` estimates what each training probe would spend at the budget's counts and, when
the total would not fit the budget's time (about a minute of wall time at standard), cuts in a fixed
order, most expendable first: lighter timing and evaluation, then fewer steps everywhere, then the
learning-rate range test, then the one-batch memorisation run. The cuts come in coarse steps (halves,
quarters) so that a model whose step time wobbles a little gets the same plan each run, and a model
that fits (every fixture) is never cut at all. Judgements that need more steps than were left (curve
trends, memorisation) are skipped with the reason, never made on too little.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from doctor.collect.budget import Budget

# Seconds of collector time each budget aims at, start-up and loading included: the parent's own start,
# judging and rendering add a few seconds, so standard stays within a minute of wall time.
FIT_S = {"quick": 22.0, "standard": 50.0, "deep": 900.0}
MIN_CURVE_STEPS = 20  # a burst shorter than this says nothing about the loss curve's trend
MIN_OVERFIT_STEPS = 30  # fewer steps than this cannot show that a batch is memorised
LR_DECADES = 6.0  # the range test's usual sweep (1e-5 or so up to 10)
OVERFIT_SAMPLES = 8  # overfit_batch trains on this many samples


@dataclass(frozen=True)
class Plan:
    """What the probes may spend, what was cut to get there, and which probes not to run at all."""

    budget: Budget
    estimate_s: float  # what the training probes would take under this plan
    full_s: float  # what they would have taken at the budget's own counts
    cuts: list[str] = field(default_factory=list)  # one phrase per cut, for the report's setup notes
    skip: dict[str, str] = field(default_factory=dict)  # probe name -> reason

    @property
    def cut(self) -> bool:
        return bool(self.cuts or self.skip)


def estimate(b: Budget, step_s: float, forward_s: float, batch: int, skip: frozenset[str] = frozenset(),
             custom_step: bool = False) -> float:
    """Seconds the training probes would spend at the counts of `b` (worst case: no early stop)."""
    small = min(1.0, OVERFIT_SAMPLES / max(batch, 1))  # overfit_batch's step, relative to a full batch
    evals = b.train_steps // max(b.eval_every, 1) + 1 if b.train_steps >= MIN_CURVE_STEPS else 0  # short: none
    cost = {
        "data_pipeline": (b.timing_batches + 1) * step_s if b.timing_batches else 0.0,
        "init_loss": b.init_batches * forward_s,
        "batch_independence": 0.75 * step_s,
        "custom_step": 2 * 4 * b.step_calls * step_s if custom_step else 0.0,
        "training_burst": b.train_steps * step_s + evals * 2 * b.eval_batches * forward_s,
        "predictions": 2 * b.eval_batches * forward_s,
        "lr_range": (LR_DECADES * b.lr_steps_per_decade + 1) * step_s,
        "overfit_batch": b.overfit_steps * step_s * max(small, 0.15),
    }
    return sum(v for k, v in cost.items() if k not in skip)


def _scaled(b: Budget, f: float) -> Budget:
    """The budget's step counts times f, each above the floor below which its probe says nothing."""
    steps = max(6, math.ceil(b.train_steps * f))
    return dataclasses.replace(
        b, train_steps=steps, eval_every=max(2, math.ceil(steps / 4)) if f < 1 else b.eval_every,
        overfit_steps=max(MIN_OVERFIT_STEPS, math.ceil(b.overfit_steps * f)),
        lr_steps_per_decade=max(2, math.ceil(b.lr_steps_per_decade * f)))


def fit(b: Budget, step_s: float, forward_s: float, batch: int, spent_s: float, fit_s: float | None = None,
        custom_step: bool = False) -> Plan:
    """The largest plan whose estimate fits what is left of the budget's time after `spent_s`."""
    fit_s = FIT_S.get(b.name, 50.0) if fit_s is None else fit_s
    left = max(fit_s - spent_s, 0.0)
    full = estimate(b, step_s, forward_s, batch, custom_step=custom_step)
    if full <= left:
        return Plan(budget=b, estimate_s=full, full_s=full)
    # The loss at initialisation keeps all its batches: they are forward passes only, and one batch's loss
    # swings enough (a healthy GroupNorm ResNet: 1.9x chance over 4 batches, 2.2x on one) to turn a verdict.
    light = dataclasses.replace(b, timing_batches=min(b.timing_batches, 2), eval_batches=min(b.eval_batches, 2))
    without_lr = "the learning-rate range test (and the rate comparison) were not run"
    without_ovf = "the one-batch memorisation run was not run"
    # (budget, probes skipped): each is cheaper than the one before
    ladder: list[tuple[Budget, dict[str, str]]] = [(light, {})]
    for f in (0.5, 0.25):
        ladder.append((_scaled(light, f), {}))
    quarter = _scaled(light, 0.25)
    ladder.append((quarter, {"lr_range": without_lr, "lr_compare": without_lr}))
    floor = dataclasses.replace(_scaled(light, 0.1), eval_batches=1, timing_batches=0)
    ladder.append((floor, {"lr_range": without_lr, "lr_compare": without_lr, "overfit_batch": without_ovf}))
    chosen, skipped = ladder[-1]
    for cand, sk in ladder:
        if estimate(cand, step_s, forward_s, batch, frozenset(sk), custom_step) <= left:
            chosen, skipped = cand, sk
            break
    cuts = []
    if chosen.train_steps < b.train_steps:
        cuts.append(f"training burst {b.train_steps} → {chosen.train_steps} steps")
    if "overfit_batch" not in skipped and chosen.overfit_steps < b.overfit_steps:
        cuts.append(f"one-batch run {b.overfit_steps} → {chosen.overfit_steps} steps")
    if "lr_range" not in skipped and chosen.lr_steps_per_decade < b.lr_steps_per_decade:
        cuts.append(f"range test {b.lr_steps_per_decade} → {chosen.lr_steps_per_decade} steps per decade")
    if chosen.eval_batches < b.eval_batches:
        cuts.append(f"{b.eval_batches} → {chosen.eval_batches} batches per evaluation")
    if 0 < chosen.timing_batches < b.timing_batches:
        cuts.append(f"loader timing {b.timing_batches} → {chosen.timing_batches} batches")
    skip = dict(skipped)
    if not chosen.timing_batches:
        skip["data_pipeline"] = "the loader timing was not run"
    cuts += [r for r in dict.fromkeys(skip.values())]
    return Plan(budget=chosen, estimate_s=estimate(chosen, step_s, forward_s, batch, frozenset(skip), custom_step),
                full_s=full, cuts=cuts, skip=skip)


def note(plan: Plan, step_s: float, batch: int, fit_s: float) -> str:
    """The report's sentence on what was cut and why."""
    return (f"Cut to fit the {plan.budget.name} budget's {fit_s:.0f} s: one training step takes {step_s:.2g} s at "
            f"batch size {batch}, so the full plan would have trained for about {plan.full_s:.0f} s. "
            + "; ".join(plan.cuts) + ". Judgements that need more steps than were left are skipped, not guessed; "
            "use --budget deep for every check at full length.")
