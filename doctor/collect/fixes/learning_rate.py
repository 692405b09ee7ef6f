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


def edit(ctx) -> list:
    """The `lr=` of the optimizer built in the user's file, set to the suggestion; [] unless exactly one matches."""
    import math  # noqa: PLC0415

    import torch  # noqa: PLC0415

    from doctor.collect.fixes import _source  # noqa: PLC0415

    sc = ctx.metrics.scalars
    suggested, configured = sc.get("lr.suggested"), sc.get("setup.lr")
    if not isinstance(suggested, (int, float)) or not isinstance(configured, (int, float)):
        return []
    names = {n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
             and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer"}
    path = ctx.setup.path
    _text, tree = _source.parsed(path)
    holders = {}
    for call in _source.calls(tree, names):
        kw = _source.keyword(call, "lr")
        node = kw.value if kw is not None else call.args[1] if len(call.args) > 1 else None
        value, holder = _source.number(node, tree)
        # The literal must be the rate doctor measured: a scheduler's peak or a second optimizer is not it.
        if value is not None and math.isclose(value, configured, rel_tol=1e-6):
            holders[(holder.lineno, holder.col_offset)] = holder
    if len(holders) != 1:
        return []
    return [_source.replace(path, next(iter(holders.values())), f"{suggested:.3g}")]
