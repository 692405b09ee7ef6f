"""Regression targets: their scale and offset per column."""

from __future__ import annotations

from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import required_scan


def run(ctx) -> None:
    if ctx.task != "regression":
        raise SkipProbe(f"not a regression task ({ctx.task}): no target scale to judge")
    train = required_scan(ctx, "train")
    t = train.targets
    if t is None or not bool((t["count"] > 0).any()):
        raise SkipProbe("the regression targets are not floating-point values")
    seen = t["count"] > 0
    std, mean = t["std"][seen], t["mean"][seen]
    varying = std[std > 1e-12]
    ctx.metrics.scalars.update({
        "data.target_columns": int(seen.sum()),
        "data.target_std_max": float(std.max()),
        "data.target_mean_abs_max": float(mean.abs().max()),
        "data.target_scale_ratio": float(varying.max() / varying.min()) if varying.numel() > 1 else 1.0,
    })


PROBE = Probe(name="data_targets", doc="Mean and standard deviation of each regression target column.",
              run=run, needs_model=False, needs_data=True, order=16,
              cost="the shared pass over the training samples; no steps")
