"""What reaches the loss: the last value-changing op before it, the loss function, and the shapes and
values it compares (one example batch, no gradient)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from doctor.collect.static.analysis import Analysis
from doctor.collect.static.checks.graph import subject
from doctor.collect.static.facts import Facts
from doctor.collect.static.ops import DETACH, RANGE, Graph, Op

ELEMENTWISE = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits", "soft_margin_loss", "poisson_nll_loss", "kl_div"})
REGRESSION = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
_LAYER_CALLS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "bilinear", "matmul", "addmm"})


def _walk(g: Graph, op: Optional[Op]) -> tuple[Optional[Op], Optional[Op]]:
    """(first value-changing op at or before `op`, a detach passed on the way)."""
    detach = None
    for _ in range(10_000):
        if op is None:
            break
        if op.name in DETACH or op.name == "data":
            detach = detach or op
        elif not op.transparent:
            break
        op = g.primary(op)
    return op, detach


def category(op: Optional[Op]) -> str:
    if op is None:
        return "unknown"
    act = op.activation
    if act is not None:
        return "activation" if act == "other" else act
    if op.is_linear_layer or op.name in _LAYER_CALLS:
        return "layer"
    if op.kind == "input":
        return "input"
    return op.name if op.name in ("log", "exp", "clamp", "abs") else "other"


def _loss_name(fn: object, call: Optional[Op]) -> str:
    if isinstance(fn, nn.Module):
        name = type(fn).__name__
        return "BCEWithLogitsLoss" if name == "_BinaryTargetAdapter" else name
    if call is not None:
        return call.label
    return getattr(fn, "__name__", type(fn).__name__)


def _output_op(a: Analysis) -> tuple[Optional[Op], str, Optional[Op], bool]:
    """(the op, its category, a detach met on the way, whether it sits in the loss function)."""
    g, lt = a.graph, a.loss
    detach = None
    if lt is not None and lt.call is not None:
        op, detach = _walk(lt.graph, lt.input_op())
        if op is not None and op.index != 0:
            if op.name == "log":  # log(softmax(x)) is log_softmax
                before, _ = _walk(lt.graph, lt.graph.primary(op))
                if before is not None and before.index == 0 and g is not None and g.output is not None:
                    before, _ = _walk(g, g.ops[g.output])
                if category(before) == "softmax":
                    return op, "log_softmax", detach, True
            return op, category(op), detach, True
    if g is None or g.output is None:
        return None, "unknown", detach, False
    op, d2 = _walk(g, g.ops[g.output])
    if op is not None and op.name == "log":
        before, _ = _walk(g, g.primary(op))
        if category(before) == "softmax":
            return op, "log_softmax", detach or d2, False
    return op, category(op), detach or d2, False


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting of two shapes (torch.broadcast_shapes imports sympy: a second of --static)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def check(a: Analysis, f: Facts) -> None:
    op, kind, detach, in_loss = _output_op(a)
    if op is not None:
        f.scalars["static.output_op"] = kind
        f.scalars["static.output_op_name"] = f"nn.{op.name}" if op.kind == "module" else op.label
        where = f.at(f"{op.label} in the loss function", op.site) if in_loss else subject(f, op)
        f.scalars["static.output_op_at"] = where
    if detach is not None and in_loss:
        f.scalars["static.detached_output"] = True
        f.scalars["static.detached_output_at"] = f.at(f"{detach.label} in the loss function", detach.site)
    lt = a.loss
    if lt is None:
        return
    f.scalars["static.loss_kind"] = lt.kind
    f.scalars["static.loss_name"] = _loss_name(a.inputs.loss_fn, lt.call)
    inp, tgt = lt.tensor_arg(0), lt.tensor_arg(1)
    if inp is None or tgt is None:
        return
    # Shapes as the whole batch gives them (the forward pass may have run on a few of its rows).
    in_shape, tgt_shape = a.full_shape(inp), a.full_shape(tgt)
    f.scalars["static.loss_input_shape"] = str(in_shape)
    f.scalars["static.loss_target_shape"] = str(tgt_shape)
    broadcast, mismatch = False, False
    if lt.kind in ELEMENTWISE and in_shape != tgt_shape:
        try:
            shape = _broadcast(tuple(in_shape), tuple(tgt_shape))
        except ValueError:
            mismatch = True
        else:
            if math.prod(shape) > max(math.prod(in_shape), math.prod(tgt_shape)):
                broadcast = True
                f.scalars["static.loss_broadcast_shape"] = str(tuple(shape))
            else:
                mismatch = True
    f.scalars["static.loss_broadcast"] = broadcast
    f.scalars["static.loss_shape_mismatch"] = mismatch
    if lt.kind in ("cross_entropy", "nll_loss"):
        classes = int(inp.shape[1]) if inp.dim() >= 2 else 1
        f.scalars["static.loss_classes"] = classes
        if classes >= 2:
            # Cross-entropy of probabilities used as logits cannot go below ln(1 + (C-1)/e).
            f.scalars["static.softmax_loss_floor"] = math.log(1 + (classes - 1) / math.e)
    finite = inp[torch.isfinite(inp)] if inp.is_floating_point() else inp
    if finite.numel():
        f.scalars["static.output_min"] = float(finite.min())
        f.scalars["static.output_max"] = float(finite.max())
    if a.inputs.real_targets:
        _targets(f, inp, tgt, kind)


def _targets(f: Facts, inp: torch.Tensor, tgt: torch.Tensor, kind: str) -> None:
    t = tgt.detach()
    integral = not t.is_floating_point() or bool(torch.all(t == t.round()))
    classes = int(inp.shape[-1]) if inp.dim() >= 2 else 1
    f.scalars["static.target_is_class_index"] = bool(
        integral and t.numel() and t.dim() == inp.dim() - 1 and classes > 1
        and float(t.min()) >= 0 and float(t.max()) < classes)
    if t.is_floating_point() and t.dim() == 2 and tuple(t.shape) == tuple(inp.shape) and classes > 1 and t.numel():
        zero_one = bool(((t == 0) | (t == 1)).all())
        rows = t.sum(dim=1)
        f.scalars["static.target_is_one_hot"] = zero_one and bool((rows == 1).all())
        f.scalars["static.target_multi_hot_rows"] = float((rows > 1).float().mean()) if zero_one else 0.0
        f.scalars["static.target_row_sum_max"] = float(rows.max())
    if t.numel():
        f.scalars["static.target_is_binary"] = bool(((t == 0) | (t == 1)).all())
    bounds = RANGE.get(kind)
    if bounds is not None and t.is_floating_point() and t.numel():
        lo, hi = bounds
        outside = (t < lo - 1e-6) | (t > hi + 1e-6)
        f.scalars["static.target_outside_output_range"] = float(outside.float().mean())
