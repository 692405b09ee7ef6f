"""Trace the model with torch.fx into a Graph; shapes come from running the traced graph once."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

import torch
from torch import fx, nn

from doctor.collect.static.ops import (Graph, Op, call_dim, has_scalar_operand, module_dim, normalise_name,
                                      pick_output)
from doctor.collect.static.sites import Sites


def call_label(fn: Any) -> str:
    """How the user most likely wrote a call: F.softmax, torch.sigmoid, operator.add -> '+'."""
    name = getattr(fn, "__name__", str(fn))
    mod = getattr(fn, "__module__", "") or ""
    if mod == "torch.nn.functional":
        return f"F.{name}"
    if mod.startswith("torch") or getattr(torch, name, None) is fn:
        return f"torch.{name}"
    if mod in ("_operator", "operator"):
        return {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "matmul": "@", "getitem": "[]"}.get(name, name)
    return name


class _SiteTracer(fx.Tracer):
    """Records, for each node, the line of the target file that created it.

    (fx's own record_stack_traces imports torch._dynamo and friends to filter frames: seconds.)
    """

    def __init__(self, sites: Sites) -> None:
        super().__init__()
        self._sites = sites

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["doctor_site"] = self._sites.frame_site(sys._getframe(1))
        return node


@contextlib.contextmanager
def _attributes_kept(model: nn.Module) -> Iterator[None]:
    """Put back every plain attribute the traced forward set: a stateful forward (self.state = h) would
    otherwise keep an fx Proxy, and every later real forward pass would fail on it."""
    saved = [(m, dict(m.__dict__)) for m in model.modules()]
    try:
        yield
    finally:
        for m, before in saved:
            for key in [k for k in m.__dict__ if k not in before]:
                del m.__dict__[key]
            for key, value in before.items():
                if m.__dict__.get(key, _GONE) is not value:
                    m.__dict__[key] = value


_GONE = object()


def trace_fx(model: nn.Module, sites: Sites) -> tuple[Graph, fx.GraphModule]:
    """Symbolically trace `model` (raises what fx raises on data-dependent control flow)."""
    tracer = _SiteTracer(sites)
    with _attributes_kept(model):
        fxg = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, fxg)
    modules = dict(model.named_modules())
    graph = Graph(method="fx")
    index: dict[fx.Node, int] = {}
    for node in fxg.nodes:
        if node.op == "output":
            out = pick_output(node.args[0] if node.args else None, lambda v: isinstance(v, fx.Node))
            graph.output = index.get(out) if out is not None else None
            continue
        stack = node.meta.get("nn_module_stack") or {}
        # The innermost module whose forward made this node: its path is the entry's first item.
        last = stack[next(reversed(stack))] if stack else None
        owner = str(last[0]) if isinstance(last, tuple) and last else ""
        common: dict[str, Any] = {"index": len(graph.ops),
                                  "inputs": tuple(index[n] for n in node.all_input_nodes if n in index)}
        if node.op == "placeholder":
            op = Op(kind="input", name=str(node.target), label=str(node.target), **common)
        elif node.op == "get_attr":
            op = Op(kind="attr", name="attr", label=str(node.target), **common)
        elif node.op == "call_module":
            mod = modules.get(node.target)
            op = Op(kind="module", name=type(mod).__name__, label=node.target, path=node.target, module=mod,
                    dim=module_dim(mod), **common)
            op.site = sites.of(mod)
        else:
            method = node.op == "call_method"
            raw = node.target if method else getattr(node.target, "__name__", str(node.target))
            name = normalise_name(str(raw))
            op = Op(kind="method" if method else "function", name=name,
                    label=f".{raw}()" if method else call_label(node.target), path=owner,
                    dim=call_dim(name, node.args, node.kwargs), scalar_operand=has_scalar_operand(node.args),
                    **common)
            op.site = node.meta.get("doctor_site")
        index[node] = op.index
        graph.ops.append(op)
    graph.link()
    return graph, gm


def propagate_shapes(graph: Graph, gm: fx.GraphModule, x: torch.Tensor) -> Any:
    """Run the traced graph once on `x`, recording each op's output shape; returns the output."""
    shapes: dict[int, tuple[int, ...]] = {}
    produced: dict[int, int] = {}  # id(tensor) -> op index, to find which op made the picked output
    nodes = [n for n in gm.graph.nodes if n.op != "output"]
    position = {id(n): i for i, n in enumerate(nodes)}
    keep: list[torch.Tensor] = []

    def is_tensor(v: Any) -> bool:
        return isinstance(v, torch.Tensor)

    class _Shapes(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            t = result if is_tensor(result) else pick_output(result, is_tensor)
            if t is not None and id(n) in position:
                shapes[id(n)] = tuple(t.shape)
                produced.setdefault(id(t), position[id(n)])
                keep.append(t)
            return result

    out = _Shapes(gm).run(x)
    for i, n in enumerate(nodes):
        if i < len(graph.ops) and id(n) in shapes:
            graph.ops[i].shape = shapes[id(n)]
    picked = pick_output(out, is_tensor)
    graph.output_value = picked
    if picked is not None and id(picked) in produced:
        graph.output = produced[id(picked)]
    return out
