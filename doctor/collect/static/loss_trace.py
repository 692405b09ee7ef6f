"""Run the loss once on the model's output, recording what it does to that output before the loss call."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from doctor.collect.static.ops import Graph, Op
from doctor.collect.static.sites import Sites
from doctor.collect.static.trace_hooked import LOSS_FUNCTIONS, Recorder


@dataclass
class LossTrace:
    graph: Graph  # op 0 is the model's output, op 1 the targets
    call: Optional[Op] = None  # the loss function call that reads the output (F.cross_entropy, ...)
    error: Optional[BaseException] = field(default=None, repr=False)  # what the loss raised, if it did
    input_index: Optional[int] = None  # the op that produced the loss call's input (0: the output untouched)

    @property
    def kind(self) -> str:
        return self.call.name if self.call is not None else "unknown"

    def tensor_arg(self, i: int) -> Optional[torch.Tensor]:
        """The loss call's i-th argument (0: input, 1: target) when it is a tensor."""
        if self.call is None or self.call.call_args is None:
            return None
        args, kwargs = self.call.call_args
        value = args[i] if len(args) > i else kwargs.get(("input", "target")[i] if i < 2 else "")
        return value if isinstance(value, torch.Tensor) else None

    def input_op(self) -> Optional[Op]:
        """The op that produced the loss call's input (op 0 when the output goes in untouched)."""
        return self.graph.ops[self.input_index] if self.input_index is not None else None


def _derives_from_output(graph: Graph, op: Op) -> bool:
    todo, seen = [op.index], set()
    while todo:
        i = todo.pop()
        if i == 0:
            return True
        if i in seen:
            continue
        seen.add(i)
        todo.extend(graph.ops[i].inputs)
    return False


def trace_loss(loss_fn: Callable[..., Any], out: torch.Tensor, y: torch.Tensor, sites: Sites) -> LossTrace:
    """Call `loss_fn(out, y)` once under a recorder (the caller holds no_grad); never raises."""
    graph = Graph(method="hooked")
    rec = Recorder(graph, sites)
    rec.source(out, "output")
    rec.source(y, "target")
    trace = LossTrace(graph=graph)
    try:
        # The loss already ran once while preparing; its warnings (size mismatch...) were shown then.
        with rec, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loss_fn(out, y)
    except Exception as exc:  # noqa: BLE001 - a raising loss is a fact to explain, not a crash
        trace.error = exc
    graph.link()
    for op in graph.ops:
        if op.name in LOSS_FUNCTIONS and any(_derives_from_output(graph, graph.ops[i]) for i in op.inputs):
            trace.call = op
            first = trace.tensor_arg(0)
            trace.input_index = rec.producers.get(id(first)) if first is not None else None
            break
    return trace
