"""Inference cost: parameters, size on disk, and latency per batch at batch 1 and at the training batch size."""

from __future__ import annotations

import io
import statistics
from typing import Any

import torch

from doctor.collect.context import device_clock
from doctor.collect.deploy import BUDGETS, batch_rows, deploy_model, eval_mode, info, rows_of
from doctor.collect.errors import describe
from doctor.collect.probes import Probe

WARMUP = 2
MIN_REPEATS, MAX_REPEATS = 5, 20
SPEND_S = 1.0  # timed calls per batch size stop after this long (at least MIN_REPEATS of them)


def latency_ms(model, x: Any, device: torch.device) -> tuple[float, int]:
    """Median milliseconds of one forward call (eval mode, no grad) after warm-up, and how many were timed."""
    with torch.no_grad():
        for _ in range(WARMUP):
            model(x)
        times: list[float] = []
        spent = 0.0
        while len(times) < MAX_REPEATS and (len(times) < MIN_REPEATS or spent < SPEND_S):
            t0 = device_clock(device)
            model(x)
            times.append(device_clock(device) - t0)
            spent += times[-1]
    return 1000 * statistics.median(times), len(times)


def run(ctx) -> None:
    model, weights = deploy_model(ctx)
    shown = info(ctx)
    shown.weights = shown.weights or weights
    sc = ctx.metrics.scalars
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    params = sum(p.numel() for p in model.parameters())
    x = ctx.train_batches[0][0]
    b = batch_rows(x)
    b1 = n1 = None
    with eval_mode(model):
        try:
            b1, n1 = latency_ms(model, rows_of(x, 1), ctx.device)
        except Exception as exc:  # noqa: BLE001 - a model fixed to its batch size; export-mismatch says why
            ctx.metrics.setup.notes.append(f"Deploy: the model does not run at batch size 1 ({describe(exc)}), so "
                                           "its latency there was not measured.")
        bb, nb = latency_ms(model, x, ctx.device)
    sc.update({"deploy.params": params, "deploy.size_mb": buf.tell() / 2**20, "deploy.latency_b1_ms": b1,
               "deploy.latency_batch_ms": bb, "deploy.latency_batch_size": b})
    shown.params, shown.size_mb, shown.batch_size = params, round(buf.tell() / 2**20, 3), b
    shown.latency_b1_ms = round(b1, 3) if b1 is not None else None
    shown.latency_batch_ms, shown.repeats = round(bb, 3), min(n for n in (n1, nb) if n is not None)
    shown.device = str(ctx.device)


PROBE = Probe(
    name="deploy_cost",
    doc="Parameters, size of the saved state_dict, and the median latency of one eval-mode forward call at batch 1 "
        "and at the training batch size on the device used (2 warm-up calls, then 5-20 timed).",
    run=run, cost="about 2 s of forward calls", order=81, budgets=BUDGETS, opt_in="deploy")
