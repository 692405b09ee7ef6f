"""Facts from the traced graph: stacked linear layers, saturating runs, biases before BatchNorm,
softmax over the batch, a detached output, and where BatchNorm meets the batch size."""

from __future__ import annotations

import math

from typing import Optional

from doctor.collect.static.analysis import Analysis
from doctor.collect.static.facts import Facts
from doctor.collect.static.ops import BATCHNORM_TYPES, DETACH, SATURATING, Graph, Op


def subject(f: Facts, op: Op) -> str:
    """Register `op`'s site under the name findings use for it."""
    return f.at(op.describe(f.root), op.site)


def check(a: Analysis, f: Facts) -> None:
    if a.inputs.batch_size is not None:
        f.scalars["static.batch_size"] = a.inputs.batch_size
    first_bn = next((op.path for op in a.forward_layers if isinstance(op.module, BATCHNORM_TYPES)), None) or next(
        (n for n, m in a.model.named_modules() if isinstance(m, BATCHNORM_TYPES)), None)
    if first_bn is not None:
        f.scalars["static.batchnorm_at"] = first_bn
    g = a.graph
    f.scalars["static.graph"] = g.method if g is not None else "unavailable"
    if g is None:
        return
    f.scalars["static.nonlinearities"] = sum(
        1 for op in g.ops if op.activation is not None and op.activation not in ("softmax", "log_softmax"))
    _stacked_linear(a, g, f)
    _saturating_run(g, f)
    _bias_before_batchnorm(a, g, f)
    _softmax_over_batch(a, g, f)
    _softmax_over_singleton(a, g, f)
    _detached_output(g, f)


def _stacked_linear(a: Analysis, g: Graph, f: Facts) -> None:
    """A Linear/Conv whose output reaches another Linear/Conv through reshapes and dropout only."""
    pairs: list[tuple[Op, Op]] = []
    for op in a.forward_layers:
        if not op.is_linear_layer:
            continue
        nxt = g.next_layer(op)
        stacked = (nxt is not None and nxt.is_linear_layer and not op.is_depthwise and nxt.path != op.path
                   and not _bottleneck(op, nxt))
        f.layer(op.path, stacked_linear=False)
        if stacked:
            pairs.append((op, nxt))
    for first, second in pairs:
        f.layer(second.path, stacked_linear=True, linear_predecessor=first.path)
    f.scalars["static.stacked_linear_pairs"] = len(pairs)
    if pairs:
        f.scalars["static.stacked_linear_at"] = subject(f, pairs[0][1])
        f.scalars["static.stacked_linear_first"] = pairs[0][0].path


def _width(m: object, side: str) -> Optional[int]:
    names = {"in": ("in_features", "in_channels"), "out": ("out_features", "out_channels")}[side]
    return next((int(getattr(m, n)) for n in names if isinstance(getattr(m, n, None), int)), None)


def _bottleneck(first: Op, second: Op) -> bool:
    """A rank-limiting pair (LoRA adapters, linear bottlenecks): the width between them is below both ends.

    Such a factorisation of one linear map is usually deliberate; a forgotten activation sits between
    layers whose middle width is not the narrowest."""
    mid, a, b = _width(first.module, "out"), _width(first.module, "in"), _width(second.module, "out")
    return None not in (mid, a, b) and mid < a and mid < b


def _saturating_run(g: Graph, f: Facts) -> None:
    """The longest run of layer -> sigmoid/tanh blocks with no normalisation or skip connection between."""
    run, best, start, best_start = 0, 0, None, None
    for op in g.ops:
        if op.is_norm or op.is_merge:
            run, start = 0, None
        elif op.name in SATURATING:
            src = g.producer(g.primary(op)) if op.inputs else None
            if src is not None and src.is_linear_layer:
                run += 1
                start = start or op
                if run > best:
                    best, best_start = run, start
    f.scalars["static.saturating_run"] = best
    if best_start is not None:
        f.scalars["static.saturating_run_at"] = subject(f, best_start)


def _bias_before_batchnorm(a: Analysis, g: Graph, f: Facts) -> None:
    """A layer's bias feeding BatchNorm straight away: BatchNorm subtracts the mean, bias included."""
    hits = []
    for op in a.forward_layers:
        if not op.is_linear_layer:
            continue
        nxt = g.next_layer(op)
        redundant = (getattr(op.module, "bias", None) is not None and nxt is not None
                     and nxt.kind == "module" and isinstance(nxt.module, BATCHNORM_TYPES))
        f.layer(op.path, bias_before_norm=redundant)
        if redundant:
            hits.append(op)
    f.scalars["static.bias_before_batchnorm"] = len(hits)
    if hits:
        f.scalars["static.bias_before_batchnorm_at"] = subject(f, hits[0])


def _softmax_dim(op: Op) -> Optional[int]:
    if op.shape is None:
        return None
    nd = len(op.shape)
    d = op.dim
    if d is None:  # PyTorch's legacy implicit choice: dim 0 for 0-, 1- and 3-d inputs
        d = 0 if nd in (0, 1, 3) else 1
    return d + nd if d < 0 else d


def _softmax_over_batch(a: Analysis, g: Graph, f: Facts) -> None:
    """softmax / log_softmax normalising across the samples of a batch (dim 0 of a batch-first tensor)."""
    x = a.example[0]
    n = int(x.shape[0]) if x is not None and x.dim() > 0 else None
    hits = [op for op in g.ops if op.activation in ("softmax", "log_softmax") and n is not None and n > 1
            and op.shape is not None and len(op.shape) >= 2 and _softmax_dim(op) == 0 and op.shape[0] == n]
    if not any(op.shape is not None for op in g.ops):
        return  # no shapes, nothing known about dims
    f.scalars["static.batch_softmax"] = len(hits)
    if hits:
        f.scalars["static.batch_softmax_at"] = subject(f, hits[0])


def _softmax_over_singleton(a: Analysis, g: Graph, f: Facts) -> None:
    """softmax / log_softmax over a dimension of size 1, in the model or in the loss function: the result is
    the constant 1 (or 0), whatever the input."""
    graphs = [(g, False)] + ([(a.loss.graph, True)] if a.loss is not None else [])
    if not any(op.shape is not None for gr, _ in graphs for op in gr.ops):
        return
    hits: list[tuple[Op, bool]] = []
    for gr, in_loss in graphs:
        for op in gr.ops:
            if op.activation not in ("softmax", "log_softmax") or op.shape is None or not len(op.shape):
                continue
            d = _softmax_dim(op)
            if d is not None and 0 <= d < len(op.shape) and op.shape[d] == 1 and math.prod(op.shape) > 0:
                hits.append((op, in_loss))
    f.scalars["static.singleton_softmax"] = len(hits)
    if hits:
        op, in_loss = hits[0]
        f.scalars["static.singleton_softmax_at"] = (f.at(f"{op.label} in the loss function", op.site) if in_loss
                                                    else subject(f, op))
        f.scalars["static.singleton_softmax_shape"] = str(tuple(op.shape))
        f.scalars["static.singleton_softmax_log"] = op.activation == "log_softmax"


def _detached_output(g: Graph, f: Facts) -> None:
    """True when every path from the output back to a trainable layer passes a .detach() or .data."""
    if g.output is None:
        return
    trainable = {op.index for op in g.ops if (op.kind == "module" and op.module is not None
                                              and any(p.requires_grad for p in op.module.parameters()))
                 or op.kind == "attr"}
    if not trainable:
        return
    todo, seen, cut = [g.output], set(), None
    reaches = False
    while todo and not reaches:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        op = g.ops[i]
        if op.name in DETACH or op.name == "data":
            cut = cut or op
            continue
        if i in trainable:
            reaches = True
            break
        todo.extend(op.inputs)
    f.scalars["static.detached_output"] = not reaches and cut is not None
    if not reaches and cut is not None:
        f.scalars["static.detached_output_at"] = subject(f, cut)
