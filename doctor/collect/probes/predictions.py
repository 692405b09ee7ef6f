"""Prediction collapse: after the training burst, does the model still tell its inputs apart?

Runs right after the training burst, on the weights it left in the target's model: in eval mode
on the validation batches (training batches when there are none), counts how often the most common
predicted class occurs against how often the most common label does; for regression, compares the
spread of the predictions with the spread of the targets. BatchNorm statistics are first
re-estimated on training batches at those weights, as a longer run would have them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from doctor.collect.context import model_output
from doctor.collect.instrument import recalibrate_batchnorm
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.collect.probes.overfit_batch import train_mode_without_dropout
from doctor.metrics import Series


def _untrained_reason(ctx) -> str:
    """Why the model does not hold weights trained by the burst ('' when it does)."""
    steps = ctx.metrics.scalars.get("train.steps")
    if not isinstance(steps, int) or steps <= 0:
        return "the training burst did not run"
    if ctx.metrics.scalars.get("loss.nonfinite"):
        return "the training burst ended with a NaN or infinite loss"
    state = ctx.setup.model.state_dict()
    changed = [torch.ne(state[k], v).any() for k, v in ctx.init_state.items()
               if k in state and v.is_floating_point() and v.numel()]
    if not changed or not bool(torch.stack(changed).any()):  # one read for the whole model
        return "the weights did not change during the training burst"
    return ""


def to_target_scale(loss_fn, pred: torch.Tensor) -> torch.Tensor:
    """The model's output on the targets' scale: a Poisson loss on log-rates compares exp(output) with the counts."""
    if isinstance(loss_fn, nn.PoissonNLLLoss) and loss_fn.log_input:
        return pred.exp()
    return pred


def run(ctx) -> None:
    if ctx.synthetic:
        raise SkipProbe(NO_TRAIN)
    reason = _untrained_reason(ctx)
    if reason:
        raise SkipProbe(f"no trained weights to examine: {reason}")
    model = ctx.setup.model
    val = ctx.val_batches[: ctx.budget.eval_batches] if ctx.full_budget is not None else ctx.val_batches  # cut to fit
    batches = val or ctx.train_batches[: ctx.budget.eval_batches]
    train_mode_without_dropout(model)
    recalibrate_batchnorm(model, [x for x, _ in ctx.train_batches[: ctx.budget.eval_batches]], model_output)
    model.eval()
    try:
        with torch.no_grad():
            outs = [model_output(model, x).float() for x, _ in batches]
    finally:
        model.train()
    ys = [y for _, y in batches]
    sc = ctx.metrics.scalars
    task = ctx.task
    if task == "classification":
        if any(o.dim() != 2 for o in outs) or ctx.num_outputs < 2:
            raise SkipProbe("the classifier's output is not (batch, classes)")
        preds = torch.cat([o.argmax(-1) for o in outs])
        labels = torch.cat([y.reshape(-1) for y in ys]).long()
        c = ctx.num_outputs
        counts = torch.stack([torch.bincount(preds, minlength=c)[:c], torch.bincount(labels.clamp(0, c - 1), minlength=c)[:c]])
        pred_counts, label_counts = counts.tolist()
        n = max(sum(pred_counts), 1)
        sc["pred.samples"] = n
        sc["pred.top_frac"] = max(pred_counts) / n
        sc["pred.top_class"] = str(max(range(c), key=pred_counts.__getitem__))
        sc["pred.label_top_frac"] = max(label_counts) / max(sum(label_counts), 1)
        sc["pred.classes_predicted"] = sum(1 for v in pred_counts if v > 0)
        sc["pred.classes_labelled"] = sum(1 for v in label_counts if v > 0)
        ctx.metrics.series["pred.class_counts"] = Series(
            x=[str(i) for i in range(c)], y=[float(v) for v in pred_counts], x_label="predicted class",
            y_label="samples")
    elif task in ("binary", "multilabel"):
        flat = [o.reshape(o.shape[0], -1) for o in outs]
        # Logits are split at 0; a model that already outputs probabilities (a sigmoid before
        # BCELoss or the user's own loss) at 0.5.
        lo_hi = torch.stack([torch.stack([f.min(), f.max()]) for f in flat]) if flat else torch.zeros(1, 2)
        lo, hi = float(lo_hi[:, 0].min()), float(lo_hi[:, 1].max())
        probabilities = lo >= 0 and hi <= 1 and not isinstance(ctx.loss_fn, nn.BCEWithLogitsLoss)
        cut = 0.5 if probabilities else 0.0
        p = torch.cat([(f > cut).float() for f in flat])
        t = torch.cat([y.reshape(y.shape[0], -1).float() for y in ys])
        if p.shape != t.shape:
            raise SkipProbe("the outputs and targets do not line up label by label")
        # Per label: the share of the majority prediction; the worst label speaks for the model.
        pos, lab = torch.stack([p.mean(0), t.mean(0)]).tolist()
        top = [max(a, 1 - a) for a in pos]
        worst = max(range(len(top)), key=top.__getitem__)
        sc["pred.samples"] = int(p.shape[0])
        sc["pred.top_frac"] = top[worst]
        sc["pred.label_top_frac"] = max(lab[worst], 1 - lab[worst])
        value = "1" if pos[worst] >= 0.5 else "0"
        sc["pred.top_class"] = value if len(top) == 1 else f"{value} for label {worst}"
    else:
        pred = to_target_scale(ctx.loss_fn, torch.cat([o.reshape(o.shape[0], -1) for o in outs]))
        tgt = torch.cat([y.reshape(y.shape[0], -1).to(pred.dtype) for y in ys])
        if pred.shape != tgt.shape or pred.shape[0] < 2:
            raise SkipProbe("the outputs and targets do not line up value by value")
        ps, ts = torch.stack([pred.std(0).mean(), tgt.std(0).mean()]).tolist()
        sc["pred.samples"] = int(pred.shape[0])
        if math.isfinite(ps) and math.isfinite(ts) and ts > 0:
            sc["pred.std_ratio"] = ps / ts


PROBE = Probe(
    name="prediction_collapse",
    doc="After the training burst, predicts the validation batches in eval mode and compares the share of "
        "the most common predicted class with that of the most common label (the spread of predictions with "
        "that of the targets for regression), with BatchNorm statistics re-estimated on training batches.",
    run=run, needs_data=True, order=51, cost="one forward pass over the validation batches")
