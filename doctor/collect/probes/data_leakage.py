"""Data leakage: validation samples that also appear, byte for byte, in the training data."""

from __future__ import annotations

import torch

from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import required_scan

def run(ctx) -> None:
    train = required_scan(ctx, "train")
    val = required_scan(ctx, "val")
    if not train.samples or not val.samples:
        raise SkipProbe("the training or validation data yielded no samples")
    hits = int(torch.isin(val.hashes, train.hashes).sum())
    # How often the data repeats by itself (small discrete inputs collide by chance): the same test within
    # the training samples, second half against first half.
    half = train.samples // 2
    first, second = train.hashes[:half], train.hashes[half:]
    repeat = float(torch.isin(second, first).float().mean()) if half else 0.0
    ctx.metrics.scalars.update({
        "data.leak_train_samples": train.samples,
        "data.leak_val_samples": val.samples,
        "data.leak_val_in_train": hits,
        "data.leak_frac": hits / val.samples,
        "data.train_repeat_frac": repeat,
    })


PROBE = Probe(name="data_leakage", doc="Hashes every examined training and validation sample on the device and "
              "counts validation samples identical to a training sample.",
              run=run, needs_model=False, needs_data=True, order=12,
              cost="one pass over 2k / 8k / 50k samples of each split (quick / standard / deep), shared with the "
                   "other data probes; no steps")
