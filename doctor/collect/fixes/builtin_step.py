"""Train with doctor's own step (zero_grad, forward, loss, backward, step) instead of the target's train_step."""

from __future__ import annotations

import dataclasses

from doctor.collect.fixes import NotApplicable

# What the source analysis would read once the fix is in: it reads the target's file, which a fix never
# writes, so the fix states the one fact it makes true by construction.
FACTS = {"static.train_step_without_zero_grad": False}


def apply(ctx):
    if ctx.setup.train_step is None:
        raise NotApplicable("the target defines no train_step")
    setup = dataclasses.replace(ctx.setup, train_step=None)
    return (dataclasses.replace(ctx, setup=setup, cache={}),
            "the target's train_step replaced by one that calls optimizer.zero_grad() before each backward")
