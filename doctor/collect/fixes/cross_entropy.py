"""Train classification with cross-entropy on the raw scores instead of a regression loss on scores or probabilities."""

from __future__ import annotations

import ast
import dataclasses

import torch
import torch.nn.functional as F

from doctor.collect.fixes import NotApplicable, _yardstick, _source, strip_output_activation, with_model
from doctor.collect.fixes.remove_output_activation import activation_edits

# A different loss: both setups train the same burst and are scored alike on validation (fixes/_yardstick.py);
# the static checks are re-run to see whether the rule still fires.
COMPARE = _yardstick.ACCURACY
PROBES = ("static",)


def measure(ctx, fixed):
    return _yardstick.measure(ctx, fixed, _yardstick.ACCURACY)
REGRESSION_LOSSES = {"MSELoss": "CrossEntropyLoss", "L1Loss": "CrossEntropyLoss", "SmoothL1Loss": "CrossEntropyLoss",
                     "HuberLoss": "CrossEntropyLoss", "mse_loss": "cross_entropy", "l1_loss": "cross_entropy",
                     "smooth_l1_loss": "cross_entropy", "huber_loss": "cross_entropy"}


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.is_floating_point() and y.shape == out.shape:
        return F.cross_entropy(out, y)  # one-hot rows read as class probabilities
    return F.cross_entropy(out, y.long().reshape(out.shape[:1] + out.shape[2:]))


def apply(ctx):
    if ctx.setup.train_step is not None:
        raise NotApplicable("the target's own train_step computes the loss, where doctor cannot swap it")
    if ctx.num_outputs < 2:
        raise NotApplicable("the model has one output; cross-entropy needs one score per class")
    x, y = ctx.train_batches[0]
    one_hot = y.is_floating_point() and y.dim() == 2 and y.shape[1] == ctx.num_outputs
    integral = not y.is_floating_point() or bool(torch.all(y == y.round()))
    if not one_hot and not (integral and float(y.min()) >= 0 and float(y.max()) < ctx.num_outputs):
        raise NotApplicable("the targets are neither class indices nor one-hot rows")
    removed: list[str] = []

    def change(model) -> int:
        name = strip_output_activation(model)
        if name is None and ctx.metrics.scalars.get("static.output_op") in ("softmax", "sigmoid"):
            raise NotApplicable("the output's softmax or sigmoid is a function call in forward, which doctor cannot remove")
        removed.extend([name] if name else [])
        return 1

    fixed, _ = with_model(ctx, change)
    fixed = dataclasses.replace(fixed, loss_fn=_loss, task="classification")
    said = "the loss replaced by cross-entropy on the raw scores" + (
        f", {removed[0]} replaced by Identity" if removed else "")
    return fixed, said + (" (one-hot targets read as class probabilities)" if one_hot else "")


def edit(ctx) -> list:
    return loss_edits(ctx, REGRESSION_LOSSES) + activation_edits(ctx)


def loss_edits(ctx, renames: dict[str, str], *, strip_float: bool = True) -> list:
    """The one loss constructor or functional call in the user's file, renamed; [] unless exactly one."""
    if ctx.setup.loss_fn is None:
        return []  # doctor chose the loss: there is no line to change
    path = ctx.setup.path
    _text, tree = _source.parsed(path)
    found = _source.calls(tree, renames)
    if len(found) != 1:
        return []
    call = found[0]
    old = _source.name_of(call.func)
    func = _source.segment(path, call.func)
    head = f"{func[: -len(old)]}{renames[old]}"
    if old[0].isupper():  # a loss module: its options (reduction, beta) belong to the old loss
        return [_source.replace(path, call, f"{head}()")]
    if len(call.args) < 2:
        return []
    target = call.args[1]
    # y.float() was there to feed integer labels to the squared error; cross-entropy wants them as they are.
    if (strip_float and isinstance(target, ast.Call) and _source.name_of(target.func) == "float"
            and isinstance(target.func, ast.Attribute) and not target.args):
        target = target.func.value
    args = f"{_source.segment(path, call.args[0])}, {_source.segment(path, target)}"
    return [_source.replace(path, call, f"{head}({args})")]
