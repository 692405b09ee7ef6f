"""A measure that does not depend on the loss, for fixes that swap the loss: train as the burst does, then score.

Two losses are not comparable in their own units, and the share of its start each removes says more about
the loss's floor than about the model (softmax cross-entropy on multi-hot rows cannot go below the labels'
entropy). So both setups, as they were and as fixed, train the same steps on the same batches from the
same initial weights, and the model is scored on the validation batches every `eval_every` steps:
accuracy for one label per sample, mean per-label ROC AUC for 0/1 labels (threshold-free, so the softmax
model's scores and the sigmoid model's are judged alike).
"""

from __future__ import annotations

import torch

from doctor.collect.burst import run_burst
from doctor.collect.context import model_output
from doctor.collect.data import cycle
from doctor.metrics import Series

ACCURACY = "fix.val_accuracy"
AUC = "fix.val_auc"


def _classes(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if y.is_floating_point() and y.shape == out.shape:
        return y.argmax(-1)  # one-hot (or probability) rows
    return y.long().reshape(out.shape[:-1])


def _auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean ROC AUC over the columns that hold both labels (NaN when none does): P(positive outranks negative)."""
    s, lab = scores.reshape(scores.shape[0], -1).float(), labels.reshape(scores.shape[0], -1).float()
    ranks = s.argsort(0).argsort(0).float() + 1  # ties are rare in trained float scores
    pos = lab.sum(0)
    neg = lab.shape[0] - pos
    ok = (pos > 0) & (neg > 0)
    if not bool(ok.any()):
        return torch.full((), float("nan"), device=scores.device)
    auc = ((ranks * lab).sum(0) - pos * (pos + 1) / 2) / (pos * neg).clamp_min(1)
    return auc[ok].mean()


def _scorer(ctx, kind: str):
    batches = ctx.val_batches or ctx.train_batches[: ctx.budget.eval_batches]

    def score(model) -> torch.Tensor:
        outs, ys = [], []
        for x, y in batches:
            outs.append(model_output(model, x))
            ys.append(y)
        out, y = torch.cat(outs), torch.cat(ys)
        if kind == ACCURACY:
            return (out.argmax(-1) == _classes(y, out)).float().mean()
        return _auc(out, y.reshape(out.shape))
    return score


def trained_scores(ctx, kind: str) -> tuple[Series, float]:
    """The score curve of a standard-length burst on `ctx`'s setup, and its last value."""
    model = ctx.fresh_model()
    opt = ctx.make_optimizer(model)
    score = _scorer(ctx, kind)
    steps = ctx.budget.train_steps
    every = max(1, ctx.budget.eval_every)
    res = run_burst(model, cycle(ctx.train_batches), steps, ctx.step_fn(), opt,
                    evaluate=lambda: score(model).reshape(1), eval_every=every, checkpoint_every=ctx.budget.checkpoint_every)
    xs = [s for s, _ in res.evals]
    ys = [v[0] for _, v in res.evals]
    label = "validation accuracy" if kind == ACCURACY else "validation ROC AUC (mean per label)"
    series = Series(x=xs, y=[y if y == y else None for y in ys], y_label=label)
    ctx.fresh_model()  # leave the initial weights in place for whatever runs next
    return series, (ys[-1] if ys else float("nan"))


def measure(ctx, fixed, kind: str):
    """(before, after, sentence, curves): the same burst on the setup as it was and as fixed, scored alike."""
    # A setup whose step raised as it was has no score to compare: the fix is judged on its own.
    b_curve, b = trained_scores(ctx, kind) if ctx.broken is None else (None, float("nan"))
    a_curve, a = trained_scores(fixed, kind)
    said = (f"both trained {ctx.budget.train_steps} steps on the same batches from the same initial weights, "
            f"scored every {max(1, ctx.budget.eval_every)} steps")
    finite = (lambda v: v if v == v else None)
    if ctx.broken is not None:
        said = f"trained {ctx.budget.train_steps} steps with the fix, scored every {max(1, ctx.budget.eval_every)} steps"
    return {kind: finite(b)}, {kind: finite(a)}, said, ({kind: (b_curve, a_curve)} if b_curve is not None else {})
