"""Constant inputs: every training input identical, or input features that never vary."""

from __future__ import annotations

import torch

from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import required_scan


def run(ctx) -> None:
    train = required_scan(ctx, "train")
    if train.samples < 2:
        raise SkipProbe("fewer than two training samples")
    sc = ctx.metrics.scalars
    distinct = int(torch.unique(train.hashes).numel())
    sc["data.distinct_inputs"] = distinct
    sc["data.distinct_input_frac"] = distinct / train.samples
    f = train.features
    if f is not None and f["count"].numel():
        seen = f["count"] > 0
        constant = seen & (f["max"] == f["min"])
        total = int(seen.sum())
        sc["data.input_features"] = total
        sc["data.constant_features"] = int(constant.sum())
        sc["data.constant_feature_frac"] = int(constant.sum()) / total if total else 0.0


PROBE = Probe(name="data_constant", doc="Counts distinct training inputs (by hash) and input features whose value "
              "never changes.", run=run, needs_model=False, needs_data=True, order=13,
              cost="the shared pass over the training samples; no steps")
