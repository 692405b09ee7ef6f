"""Input pipeline timing: how long the training loader takes per batch against one training step.

Loading is timed on a fresh pass over the user's loader, batch by batch up to the device (what
training waits for when nothing overlaps it); computing is timed on batches already on the device.
Several of each, so one slow batch or a busy machine does not decide. The first batch is reported
apart: it includes starting the loader's workers.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.data import DataLoader

from doctor.collect.data import cycle, read_batches
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.metrics import Series

STEP_TIME_S = 1.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_loading(ctx, batches: int) -> tuple[list[float], list[int]]:
    """Seconds per batch (the first with the loader's start-up) and rows per batch, for batches+1 batches."""
    name = ctx.setup.names.get("train_data", "train_data")
    times, rows = [], []
    stream = read_batches(ctx.train_loader, name=name)
    try:
        t0 = time.perf_counter()
        for _raw, x, y in stream:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            _sync(ctx.device)
            t1 = time.perf_counter()
            times.append(t1 - t0)
            rows.append(int(x.shape[0]))
            t0 = t1
            if len(times) > batches:
                break
    finally:
        stream.close()  # stop the loader's workers before timing the model
    return times, rows


def _time_steps(ctx, steps: int) -> tuple[float, int]:
    """Seconds of the fastest training step on device batches, after one untimed warm-up step. Once two
    steps are timed, it stops when they add up to STEP_TIME_S: long steps time well, and each one costs."""
    model = ctx.fresh_model()
    opt = ctx.make_optimizer(model)
    step = ctx.step_fn()
    batches = cycle(ctx.train_batches)
    step(model, next(batches), opt)
    _sync(ctx.device)
    times: list[float] = []
    while len(times) < steps and (len(times) < 2 or sum(times) < STEP_TIME_S):
        batch = next(batches)
        t0 = time.perf_counter()
        step(model, batch, opt)
        _sync(ctx.device)
        times.append(time.perf_counter() - t0)
    ctx.fresh_model()  # leave the weights as the next probe expects them
    # The fastest step: a step on cached batches does the same work each time, so anything slower is the
    # machine being busy elsewhere; loading keeps its median, since samples can differ in cost.
    return min(times), int(ctx.train_batches[0][0].shape[0])


def run(ctx) -> None:
    if ctx.synthetic or ctx.train_loader is None:
        raise SkipProbe(NO_TRAIN)
    load, rows = _time_loading(ctx, ctx.budget.timing_batches)
    if len(load) < 3:
        raise SkipProbe("the training loader yields fewer than three batches: too few to time")
    steady = statistics.median(load[1:])
    step_s, step_rows = _time_steps(ctx, len(load) - 1)
    load_rows = statistics.median(rows[1:])
    # Per sample, so a batch halved after an out-of-memory error still compares fairly.
    ratio = (steady / load_rows) / (step_s / step_rows) if step_s > 0 else None
    workers = ctx.train_loader.num_workers if isinstance(ctx.train_loader, DataLoader) else 0
    ctx.metrics.scalars.update({
        "data.loader_first_batch_s": load[0],
        "data.loader_batch_s": steady,
        "data.step_s": step_s,
        "data.loader_wait_ratio": ratio,
        "data.loader_workers": workers,
    })
    ctx.metrics.series["data.loader_timing"] = Series(
        x=["load a batch", "training step"], y=[steady * 1e3, step_s * 1e3 * load_rows / step_rows],
        x_label="", y_label="milliseconds per batch")


PROBE = Probe(name="data_pipeline", doc="Times batches from the training loader against training steps on batches "
              "already on the device.", run=run, needs_data=True, order=19, budgets=("standard", "deep"),
              cost="10 / 30 batches read and up to as many training steps timed (standard / deep): at least 2 steps "
                   "plus a warm-up, and no more once they take a second")
