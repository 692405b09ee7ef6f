"""Set every parameter group's learning rate to the range test's suggestion (group ratios kept)."""

from __future__ import annotations

import dataclasses

from doctor.collect.fixes import NotApplicable


def apply(ctx):
    sc = ctx.metrics.scalars
    suggested, configured = sc.get("lr.suggested"), sc.get("setup.lr")
    if not isinstance(suggested, (int, float)) or not isinstance(configured, (int, float)) or configured <= 0:
        raise NotApplicable("the range test gave no suggested rate")
    factor = suggested / configured
    make = ctx.make_optimizer

    def make_optimizer(model):
        opt = make(model)
        for group in opt.param_groups:
            group["lr"] = group["lr"] * factor
            if "initial_lr" in group:
                group["initial_lr"] = group["initial_lr"] * factor
        return opt

    fixed = dataclasses.replace(ctx, cache={})
    fixed.make_optimizer = make_optimizer  # an instance attribute, in front of the method
    return fixed, f"learning rate {configured:.3g} → {suggested:.3g} (the range test's suggestion, {factor:.3g}x)"
