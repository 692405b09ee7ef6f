"""Record a Graph by running the model once: module hooks for layers, a TorchFunctionMode for calls.

The fallback when torch.fx cannot trace (data-dependent control flow). Leaf modules (those of
torch.nn, as fx sees them) are recorded as one op each; torch functions and tensor methods called
from the user's own forward code (F.softmax, torch.sigmoid, x.detach(), x / 2) are recorded with
the ops that produced their tensor inputs. The same recorder traces the loss function.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from doctor.collect.instrument import HookSet
from doctor.collect.static.ops import (Graph, Op, call_dim, has_scalar_operand, module_dim, normalise_name,
                                      pick_output)
from doctor.collect.static.sites import Sites
from doctor.collect.static.trace_fx import call_label

# Loss functions are recorded even when they raise, so a shape or range error can be explained.
LOSS_FUNCTIONS = frozenset({
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss", "margin_ranking_loss",
    "hinge_embedding_loss", "cosine_embedding_loss", "triplet_margin_loss", "ctc_loss",
})


def is_leaf(m: nn.Module) -> bool:
    """Leaf modules as torch.fx's default tracer sees them: torch.nn's own, and modules with no children."""
    mod = type(m).__module__
    if mod.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(m, nn.Sequential):
        return True
    return not any(True for _ in m.children())


def _tensors(value: Any, depth: int = 0) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 3:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v, depth + 1)]
    return []


class Recorder(TorchFunctionMode):
    """Builds a Graph from torch calls; `suspended` > 0 while inside a leaf module."""

    def __init__(self, graph: Graph, sites: Sites) -> None:
        super().__init__()
        self.graph = graph
        self.sites = sites
        self.producers: dict[int, int] = {}  # id(tensor) -> op index
        self._keep: list[torch.Tensor] = []  # hold recorded tensors so their ids are not reused
        self.suspended = 0
        self.owners: list[str] = [""]

    def source(self, tensor: torch.Tensor, label: str) -> int:
        op = Op(index=len(self.graph.ops), kind="input", name=label, label=label)
        self.graph.ops.append(op)
        self.bind(tensor, op.index)
        return op.index

    def bind(self, value: Any, index: int) -> None:
        for t in _tensors(value):
            self.producers[id(t)] = index
            self._keep.append(t)
        t0 = next(iter(_tensors(value)), None)
        if t0 is not None and self.graph.ops[index].shape is None:
            self.graph.ops[index].shape = tuple(t0.shape)

    def inputs_of(self, *values: Any) -> tuple[int, ...]:
        seen: dict[int, None] = {}
        for v in values:
            for t in _tensors(v):
                i = self.producers.get(id(t))
                if i is not None:
                    seen[i] = None
        return tuple(seen)

    def add(self, **kw: Any) -> Op:
        op = Op(index=len(self.graph.ops), **kw)
        self.graph.ops.append(op)
        return op

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        kwargs = kwargs or {}
        if self.suspended:
            return func(*args, **kwargs)
        raw = getattr(func, "__name__", "")
        if raw == "__get__":  # a property such as .data or .T
            raw = getattr(getattr(func, "__self__", None), "__name__", raw)
        name = normalise_name(raw)
        inputs = self.inputs_of(args, kwargs)
        try:
            out = func(*args, **kwargs)
        except BaseException:
            if inputs and name in LOSS_FUNCTIONS:
                self._call(func, raw, name, args, kwargs, inputs, raised=True)
            raise
        if inputs and _tensors(out):
            op = self._call(func, raw, name, args, kwargs, inputs)
            self.bind(out, op.index)
        return out

    def _call(self, func: Callable, raw: str, name: str, args: tuple, kwargs: dict, inputs: tuple[int, ...],
              raised: bool = False) -> Op:
        qual = getattr(func, "__qualname__", "") or ""
        method = qual.startswith(("Tensor.", "TensorBase.", "_TensorBase.")) or raw in ("data", "T", "mT", "H")
        op = self.add(kind="method" if method else "function", name=name,
                      label=(f".{raw}" if raw in ("data", "T", "mT", "H") else f".{raw}()") if method
                      else call_label(func),
                      path=self.owners[-1], inputs=inputs, dim=call_dim(name, args, kwargs),
                      scalar_operand=has_scalar_operand(args),
                      site=self.sites.frame_site(sys._getframe(2)), raised=raised,
                      call_args=(args, kwargs) if name in LOSS_FUNCTIONS else None)
        return op


def trace_hooked(model: nn.Module, x: torch.Tensor, sites: Sites) -> Graph:
    """Run `model(x)` once, recording modules and calls (the caller handles no_grad, mode and RNG)."""
    graph = Graph(method="hooked")
    rec = Recorder(graph, sites)
    rec.source(x, "input")
    hooks = HookSet()
    try:
        for path, mod in model.named_modules():
            if is_leaf(mod) and path:
                hooks.add(mod.register_forward_pre_hook(_leaf_pre(rec), with_kwargs=True))
                hooks.add(mod.register_forward_hook(_leaf_post(rec, path, mod, sites), with_kwargs=True))
            else:
                hooks.add(mod.register_forward_pre_hook(_owner_pre(rec, path)))
                hooks.add(mod.register_forward_hook(_owner_post(rec)))
        with rec:
            out = model(x)
    finally:
        hooks.remove()
    first = pick_output(out, lambda v: isinstance(v, torch.Tensor))
    graph.output = rec.producers.get(id(first)) if first is not None else None
    graph.output_value = first
    graph.link()
    return graph


def _leaf_pre(rec: Recorder):
    def pre(_m: nn.Module, args: tuple, kwargs: dict) -> None:
        rec.suspended += 1
    return pre


def _leaf_post(rec: Recorder, path: str, mod: nn.Module, sites: Sites):
    def post(_m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        rec.suspended -= 1
        if rec.suspended:
            return  # a leaf called from inside another leaf
        op = rec.add(kind="module", name=type(mod).__name__, label=path, path=path, module=mod,
                     inputs=rec.inputs_of(args, kwargs), dim=module_dim(mod),
                     site=sites.of(mod))
        rec.bind(out, op.index)
    return post


def _owner_pre(rec: Recorder, path: str):
    def pre(_m: nn.Module, _args: tuple) -> None:
        if not rec.suspended:
            rec.owners.append(path)
    return pre


def _owner_post(rec: Recorder):
    def post(_m: nn.Module, _args: tuple, _out: Any) -> None:
        if not rec.suspended and len(rec.owners) > 1:
            rec.owners.pop()
    return post
