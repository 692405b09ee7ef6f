"""One instrumented training burst that measures gradient flow, activation health and train/val curves.

The three are separate measurements reported as separate probes, but they share one burst so
the user pays for the training steps once.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from doctor import curves
from doctor.collect import deploy
from doctor.collect.burst import BurstResult, run_burst
from doctor.collect.context import model_output
from doctor.collect.data import cycle
from doctor.collect.instrument import ActStats, GradStats
from doctor.collect.pace import MIN_CURVE_STEPS
from doctor.collect.probes import Probe
from doctor.collect.scan import NO_TRAIN
from doctor.collect.target import TargetError
from doctor.metrics import Series

RECORDS = ("gradient_flow", "activation_health", "train_val")
_NOT_WEIGHT_LAYERS = {"Embedding", "EmbeddingBag", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm",
                      "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm", "PReLU"}


def checked_step_loss(loss):
    """A custom train_step's return value as the loss the curves need, or a TargetError saying what came back."""
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return loss.reshape(())
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss)
    got = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
           else "None" if loss is None else f"a {type(loss).__name__}")
    raise TargetError(f"train_step returned {got}; doctor needs the step's loss (a scalar tensor or a float) "
                      "to draw the training curves",
                      kind="forward", hint="End train_step with `return loss` (or `return loss.item()`).")


def _evaluator(ctx, model):
    """Mean loss and accuracy on validation batches and on training batches, as one device tensor."""
    classification = ctx.task == "classification"
    train_eval = ctx.train_batches[: ctx.budget.eval_batches]

    def over(batches) -> list[torch.Tensor]:
        loss = torch.zeros((), device=ctx.device)
        correct = torch.zeros((), device=ctx.device)
        count = 0
        for x, y in batches:
            out = model_output(model, x)
            loss = loss + ctx.compute_loss(out, y).float()
            if classification and out.dim() == 2 and y.dim() == 1:
                correct = correct + (out.argmax(-1) == y).sum()
                count += y.numel()
        acc = correct / count if count else torch.full((), float("nan"), device=ctx.device)
        return [loss / max(len(batches), 1), acc]

    val = ctx.val_batches[: ctx.budget.eval_batches] if ctx.full_budget is not None else ctx.val_batches  # cut to fit

    def evaluate() -> torch.Tensor:
        return torch.stack(over(val) + over(train_eval))

    return evaluate


def _publish_curves(ctx, res: BurstResult) -> None:
    m = ctx.metrics
    m.series["loss.train"] = Series(x=list(range(1, res.steps_run + 1)), y=res.losses, y_label="loss")
    if res.evals:
        steps = [s for s, _ in res.evals]
        col = _eval_columns(res)
        m.series["loss.val"] = Series(x=steps, y=col["val_loss"], y_label="loss")
        m.series["loss.train_eval"] = Series(x=steps, y=col["train_loss"], y_label="loss")
        if ctx.task == "classification":
            m.series["acc.val"] = Series(x=steps, y=col["val_acc"], y_label="accuracy")
            m.series["acc.train"] = Series(x=steps, y=col["train_acc"], y_label="accuracy")


def _eval_columns(res: BurstResult) -> dict[str, list[float]]:
    """The evaluator's four values per evaluation, as named columns."""
    names = ("val_loss", "val_acc", "train_loss", "train_acc")
    return {n: [vals[i] for _, vals in res.evals] for i, n in enumerate(names)}


def _curve_scalars(ctx, res: BurstResult) -> None:
    sc = ctx.metrics.scalars
    losses = res.losses
    bad = curves.first_nonfinite(losses)
    sc["train.steps"] = res.steps_run
    sc["loss.first_nonfinite_step"] = bad + 1 if bad >= 0 else -1
    sc.update(curves.train_stats(losses))
    if bad >= 0 or len(losses) < curves.MIN_POINTS:
        return
    if not res.evals or not ctx.val_batches:
        return
    col = _eval_columns(res)
    val = curves.val_stats(col["val_loss"], col["train_loss"][-1])
    if not val:
        return
    sc.update(val)
    if ctx.task == "classification":
        sc.update(curves.acc_stats(col["train_acc"][-1], col["val_acc"][-1]))


def publish_grads(m, model: nn.Module, summary: dict[str, Any]) -> None:
    """GradStats.summary() into the Metrics document `m` (a burst's, or a live run's under doctor.watch)."""
    sc = m.scalars
    layers = summary.get("layers", {})
    sc["grad.steps"] = summary.get("steps", 0)
    if "nonfinite" in summary:
        sc["grad.nonfinite"] = summary["nonfinite"]
        sc["grad.total_norm_max"] = summary["total_norm_max"]
        sc["grad.total_norm_median"] = summary["total_norm_median"]
    for name, row in layers.items():
        m.layers.setdefault(name, {}).update(row)
    # The depth ratio compares weight layers only: an embedding's gradient is sparse (rows of unseen
    # tokens get none) and a norm layer's scale says little about the signal reaching the layer.
    # Parameters held by a container itself (ViT's class token and position embedding, on the root and on
    # its encoder) are not a layer of the signal path: their gradient sums over every position.
    mods = dict(model.named_modules())
    weights = [n for n in layers if m.layer_types.get(n, "") not in _NOT_WEIGHT_LAYERS and n in mods and n
               and (not any(True for _ in mods[n].children()) or isinstance(mods[n], nn.MultiheadAttention))]
    if len(weights) >= 2:
        names = list(layers)
        first, last = weights[0], weights[-1]
        last_rms = layers[last]["grad.rms"]
        for name in names:
            layers_row = m.layers[name]
            layers_row["grad.rms_to_last"] = layers_row["grad.rms"] / last_rms if last_rms > 0 else None
        sc["grad.first_layer"], sc["grad.last_layer"] = first, last
        if last_rms > 0:
            sc["grad.depth_ratio"] = layers[first]["grad.rms"] / last_rms
        sc["grad.min_rms_layer"] = min(names, key=lambda n: layers[n]["grad.rms"])
    if layers:
        m.series["grad.norm_by_layer"] = Series(
            x=list(layers), y=[r["grad.norm"] for r in layers.values()], x_label="layer (forward order)",
            y_label="median gradient norm", log_y=True)
        m.series["grad.rms_by_layer"] = Series(
            x=list(layers), y=[r["grad.rms"] for r in layers.values()], x_label="layer (forward order)",
            y_label="median RMS gradient", log_y=True)
    if summary.get("total"):
        m.series["grad.total_norm"] = Series(
            x=list(range(1, len(summary["total"]) + 1)), y=summary["total"], y_label="global gradient norm",
            log_y=True)


def publish_acts(m, summary: dict[str, dict[str, Any]]) -> None:
    """ActStats.summary() (or the live monitor's) into the Metrics document `m`."""
    sc = m.scalars
    for name, row in summary.items():
        m.layers.setdefault(name, {}).update(row)
    sc["act.layers_measured"] = len(summary)
    dead = {n: r["act.dead_frac"] for n, r in summary.items() if "act.dead_frac" in r}
    sat = {n: r["act.saturated_frac"] for n, r in summary.items() if "act.saturated_frac" in r}
    sc["act.dead_layers"] = sum(v > 0.5 for v in dead.values())
    sc["act.saturated_layers"] = sum(v > 0.5 for v in sat.values())
    if dead:
        m.series["act.dead_frac_by_layer"] = Series(
            x=list(dead), y=list(dead.values()), x_label="ReLU layer", y_label="dead-unit fraction", reference=0.5)
    if sat:
        m.series["act.saturated_frac_by_layer"] = Series(
            x=list(sat), y=list(sat.values()), x_label="sigmoid/tanh layer", y_label="saturated fraction",
            reference=0.5)


def run(ctx) -> Optional[dict[str, str]]:
    model = ctx.fresh_model()
    opt = ctx.make_optimizer(model)
    steps = ctx.budget.train_steps
    grads = GradStats(model, ctx.layer_order, steps, ctx.device)
    acts = ActStats(model).attach()
    custom = ctx.setup.train_step is not None
    skipped: dict[str, str] = {}
    if ctx.synthetic:
        skipped["train_val"] = NO_TRAIN
    elif not ctx.val_batches:
        skipped["train_val_val"] = "no validation data and too little training data to hold some out"

    if custom:
        user_step = ctx.setup.train_step
        from doctor.collect.inject import call_injected  # noqa: PLC0415 - only custom steps need it

        def step_fn(m, batch, o):
            loss = call_injected(user_step, {"model": m, "batch": batch, "optimizer": o, "loss_fn": ctx.loss_fn,
                                             "device": ctx.device}, what="train_step")
            return checked_step_loss(loss)
    else:
        step_fn = ctx.step_fn()

    def checkpoint(res: BurstResult) -> None:
        if not ctx.synthetic:
            _publish_curves(ctx, res)
        ctx.checkpoint()

    try:
        # A burst cut below MIN_CURVE_STEPS judges no curve (below), so it spends nothing on evaluations.
        short = ctx.full_budget is not None and steps < MIN_CURVE_STEPS
        evaluate = _evaluator(ctx, model) if (not ctx.synthetic and ctx.val_batches and not short) else None
        res = run_burst(
            model, cycle(ctx.train_batches), steps, step_fn, opt, grads=grads, acts=acts,
            act_from_step=steps // 2, evaluate=evaluate, eval_every=ctx.budget.eval_every,
            checkpoint_every=ctx.budget.checkpoint_every, on_checkpoint=checkpoint)
    finally:
        acts.detach()
    if deploy.will_run(ctx):  # the deploy probes judge the trained weights
        ctx.cache[deploy.TRAINED] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    publish_grads(ctx.metrics, ctx.setup.model, grads.summary())
    publish_acts(ctx.metrics, acts.summary())
    for name, site in acts.sites.items():
        ctx.metrics.layer_sites.setdefault(name, site)
    if not ctx.synthetic:
        _publish_curves(ctx, res)
        if short:  # NaN is still NaN; trends and gaps over a handful of steps would be guesses
            ctx.metrics.scalars.update({"train.steps": res.steps_run,
                                        "loss.nonfinite": curves.first_nonfinite(res.losses) >= 0})
            skipped["train_val"] = (f"the burst was cut to {steps} steps to fit the time; the loss curve's trend "
                                    f"and the train/validation gap need {MIN_CURVE_STEPS} (--budget deep runs them)")
        else:
            _curve_scalars(ctx, res)
    skipped.pop("train_val_val", None)
    if not acts.types:
        skipped["activation_health"] = ("no ReLU, ReLU6, sigmoid or tanh in the model: neither modules nor "
                                         "functional calls in its forward")
    elif not acts.slots:
        skipped["activation_health"] = (f"the burst stopped at step {res.steps_run} (non-finite loss), before "
                                        f"activations were measured from step {steps // 2}")
    return skipped


PROBE = Probe(
    name="training_burst",
    doc="Trains from the initial weights with the target's optimizer and loss; records per-layer gradient "
        "norms every step, dead/saturated units over the second half, and train/val loss and accuracy.",
    run=run, records=RECORDS, cost="20 / 60 / 300 steps (quick / standard / deep)", order=50)
