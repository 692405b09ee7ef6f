"""Overfit one small batch; the same steps measure update/weight ratios, untouched weights and train/eval mode.

A correct model, loss and optimizer drive the loss on a handful of samples towards zero within a
few hundred steps. The first steps of that run also show how far each step moves each layer's
weights, and which parameters never get a gradient or never move. At the end, the batch the model
has memorised is scored in train mode and in eval mode: the two should agree.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from doctor.collect.context import model_output
from doctor.collect.instrument import UpdateStats, recalibrate_batchnorm
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.metrics import Series

RECORDS = ("overfit_batch", "update_ratio", "unchanged_weights", "train_eval")
SAMPLES = 8  # "one small batch": few enough that any working model can memorise it
UPDATE_STEPS = 10  # update ratios and moved weights are read over the first steps, before the loss is ~0
CHECK_EVERY = 5  # one host sync per this many steps, to stop once the batch is memorised
SUCCESS = 0.1  # stop early once the loss is below this fraction of its starting value (the rule fires above 0.5)
# Modules that are random in train mode by design: dropout and its relatives, attention dropout
# inside MultiheadAttention, stochastic depth (torchvision's StochasticDepth, timm's DropPath).
STOCHASTIC = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
              nn.MultiheadAttention)
STOCHASTIC_NAMES = ("Dropout", "DropPath", "DropBlock", "StochasticDepth")


def _batch(ctx) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = ctx.train_batches[0]
    n = min(SAMPLES, x.shape[0])
    return x[:n], y[:n]


def train_mode_without_dropout(model: nn.Module) -> None:
    """Train mode (BatchNorm on batch statistics, any `self.training` branch) with dropout-like modules
    off: they are meant to differ between the modes, and the comparison is about everything else."""
    model.train()
    for mod in model.modules():
        if isinstance(mod, STOCHASTIC) or any(k in type(mod).__name__ for k in STOCHASTIC_NAMES):
            mod.eval()


def _compare_modes(ctx, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        train_mode_without_dropout(model)
        train_loss = ctx.compute_loss(model_output(model, x), y).float()
        model.eval()
        eval_loss = ctx.compute_loss(model_output(model, x), y).float()
    model.train()
    return train_loss, eval_loss


def run(ctx) -> Optional[dict[str, str]]:
    if ctx.synthetic:
        raise SkipProbe(NO_TRAIN)
    model = ctx.fresh_model()
    model.zero_grad(set_to_none=True)
    opt = ctx.make_optimizer(model)
    x, y = _batch(ctx)
    steps = ctx.budget.overfit_steps
    dev = ctx.device
    upd = UpdateStats(model, ctx.layer_order, UPDATE_STEPS, dev, optimizer=opt)
    losses = torch.full((steps,), float("nan"), device=dev)
    start: Optional[float] = None
    ran = 0
    step_fn = ctx.step_fn(after_backward=upd.after_backward)  # it measures the first UPDATE_STEPS steps only
    for step in range(steps):
        loss = step_fn(model, (x, y), opt)
        upd.after_step(step)
        losses[step] = loss.detach().float()
        ran = step + 1
        if ran % CHECK_EVERY == 0 and ran < steps:
            window = losses[ran - CHECK_EVERY: ran]
            head = losses[0] if start is None else None
            vals = torch.stack([window.mean(), window.isfinite().all().float()] + ([head] if head is not None else []))
            got = vals.tolist()  # the only host read in the loop, once per CHECK_EVERY steps
            if start is None:
                start = got[2]
            if got[1] < 1 or not math.isfinite(start):
                break
            if ran >= UPDATE_STEPS and start > 0 and got[0] < SUCCESS * start:
                break
    skipped: dict[str, str] = {}
    curve = losses[:ran].tolist()
    _publish_overfit(ctx, curve)
    bad = next((i + 1 for i, v in enumerate(curve) if not math.isfinite(v)), 0)
    if bad and bad <= UPDATE_STEPS:
        why = f"the loss on the batch became NaN or infinite at step {bad}, before updates were measured"
        skipped["update_ratio"] = skipped["unchanged_weights"] = why
    else:
        publish_updates(ctx.metrics, upd.summary(), skipped)
    if bad:
        skipped["train_eval"] = "the loss on the batch became NaN or infinite"
    else:
        # Running statistics lag behind weights that changed at every step; measure both modes with
        # statistics taken from this batch at the final weights, so only real differences remain.
        train_mode_without_dropout(model)
        recalibrate_batchnorm(model, [x], model_output)
        tr, ev = _compare_modes(ctx, model, x, y)
        _publish_modes(ctx, tr, ev)
    model.zero_grad(set_to_none=True)
    return skipped


def _publish_overfit(ctx, curve: list[float]) -> None:
    sc = ctx.metrics.scalars
    sc["ovf.steps"] = len(curve)
    sc["ovf.samples"] = min(SAMPLES, ctx.train_batches[0][0].shape[0])
    if not curve:
        return
    ctx.metrics.series["ovf.loss"] = Series(x=list(range(1, len(curve) + 1)), y=curve,
                                            y_label="loss on one batch", log_y=True)
    finite = all(math.isfinite(v) for v in curve)
    sc["ovf.nonfinite"] = not finite
    if not finite or len(curve) < CHECK_EVERY:
        return
    k = min(5, len(curve))
    start, end = curve[0], sum(curve[-k:]) / k
    sc["ovf.loss_start"], sc["ovf.loss_end"] = start, end
    if start > 0:
        sc["ovf.loss_ratio"] = end / start


def publish_updates(m, s: dict[str, Any], skipped: dict[str, str]) -> None:
    """UpdateStats.summary() (or the live monitor's) into the Metrics document `m`."""
    sc = m.scalars
    if not s["params"]:
        skipped["update_ratio"] = skipped["unchanged_weights"] = "the model has no trainable parameters"
        return
    ratios: dict[str, float] = s["ratio"]
    for name, r in ratios.items():
        m.layers.setdefault(name, {})["upd.ratio"] = r
    moving = {n: r for n, r in ratios.items() if r > 0}
    if moving:
        vals = sorted(moving.values())
        med = vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1] + vals[len(vals) // 2])
        sc["upd.ratio_median"] = med
        hi = max(moving, key=moving.__getitem__)
        lo = min(moving, key=moving.__getitem__)
        sc["upd.ratio_max"], sc["upd.max_layer"] = moving[hi], hi
        sc["upd.ratio_min"], sc["upd.min_layer"] = moving[lo], lo
        if med > 0:
            sc["upd.min_to_median"] = moving[lo] / med
        for name, r in moving.items():
            m.layers[name]["upd.ratio_to_median"] = r / med if med > 0 else None
        m.series["upd.ratio_by_layer"] = Series(
            x=list(ratios), y=list(ratios.values()), x_label="layer (forward order)",
            y_label="update / weight norm per step", log_y=True)
    else:
        skipped["update_ratio"] = "no layer's weights moved"
    sc["upd.steps"] = s["steps"]
    no_grad, not_moved = s["no_grad"], s["not_moved"]
    sc["unchanged.params"] = len(no_grad) + len(not_moved)
    sc["unchanged.no_grad"] = len(no_grad)
    sc["unchanged.not_moved"] = len(not_moved)
    if no_grad or not_moved:
        sc["unchanged.names"] = _name_list(no_grad + not_moved)
    sc["unchanged.trainable"] = s["params"]


def _name_list(names: list[str], most: int = 4) -> str:
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f" and {len(names) - most} more"


def _publish_modes(ctx, train_loss: torch.Tensor, eval_loss: torch.Tensor) -> None:
    tr, ev = torch.stack([train_loss, eval_loss]).tolist()
    sc = ctx.metrics.scalars
    sc["te.loss_train_mode"], sc["te.loss_eval_mode"] = tr, ev
    start = sc.get("ovf.loss_start")
    if math.isfinite(tr) and math.isfinite(ev) and isinstance(start, float) and start > 0:
        sc["te.loss_gap"] = abs(ev - tr) / start
    if math.isfinite(tr) and math.isfinite(ev) and min(tr, ev) > 0:
        sc["te.loss_ratio"] = max(tr, ev) / min(tr, ev)


PROBE = Probe(
    name="overfit_batch",
    doc="Trains on one batch of 8 samples until its loss is near zero (or the step budget ends); the first "
        "10 steps record per-layer update/weight ratios and parameters that get no gradient or that the "
        "optimizer cannot move; the memorised batch is then scored in train mode (dropout off) and in eval "
        "mode, with BatchNorm statistics re-estimated on it.",
    run=run, needs_data=True, records=RECORDS, order=60,
    cost="up to 50 / 100 / 300 steps on 8 samples (quick / standard / deep); stops once memorised")
