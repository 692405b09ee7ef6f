"""Facts from the target's source: functional dropout left on, train_step without zero_grad, clipping
after the optimizer step, schedulers that drive the learning rate to zero."""

from __future__ import annotations

from doctor.collect.static.analysis import Analysis
from doctor.collect.static.facts import Facts
from doctor.collect.static.source import STEPS_SIMULATED


def check(a: Analysis, f: Facts) -> None:
    src = a.source
    f.scalars["static.source_available"] = src is not None
    if src is None:
        return
    f.scalars["static.always_on_dropout"] = len(src.always_on_dropout)
    if src.always_on_dropout:
        first = src.always_on_dropout[0]
        f.scalars["static.always_on_dropout_at"] = f.at(first.what, first.site)
    if src.optimizer is not None:
        f.scalars["static.optimizer_at"] = f.at(src.optimizer.what, src.optimizer.site)
    missing = src.train_step is not None and not src.train_step_zero_grad
    f.scalars["static.train_step_without_zero_grad"] = missing
    if src.train_step is not None:
        f.scalars["static.train_step_at"] = f.at(src.train_step.what, src.train_step.site)
    f.scalars["static.clip_after_step"] = bool(src.clip_after_step)
    if src.clip_after_step:
        first = src.clip_after_step[0]
        f.scalars["static.clip_after_step_at"] = f.at(first.what, first.site)
    if src.schedulers:
        where, factor = min(src.schedulers, key=lambda s: s[1])
        f.scalars["static.scheduler_lr_factor"] = factor
        f.scalars["static.scheduler"] = where.detail
        f.scalars["static.scheduler_steps"] = STEPS_SIMULATED
        f.scalars["static.scheduler_at"] = f.at(where.what, where.site)
    else:
        f.scalars["static.scheduler_lr_factor"] = 1.0  # no scheduler doctor can read: the rate stays
