"""The three sources of static facts, each computed on first use and cached: tree, graph, source.

`Analysis` wraps what the target resolved to (`StaticInputs`) and exposes the traced graph, the
loss trace, the built optimizer and the parsed source lazily, so a check that needs none of
them costs nothing, and a source that fails is tried once and explained once (in `notes`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from doctor.collect.errors import describe, user_frame
from doctor.collect.static.loss_trace import LossTrace, trace_loss
from doctor.collect.static.ops import LINEAR_TYPES, Graph, Op
from doctor.collect.static.sites import Sites, fmt_site
from doctor.collect.static.source import SourceFacts, SourceUnavailable, read_source


SLICE = 8  # rows of the example batch the static forward pass uses: cheap, and enough for shapes and ranges


@dataclass
class StaticInputs:
    """What static analysis may use: the model, at most one example batch, the loss and optimizer factories."""

    model: nn.Module
    target: str
    sites: Sites
    x: Optional[torch.Tensor] = None  # one example batch, when there is one
    y: Optional[torch.Tensor] = None
    real_targets: bool = False  # y came from the user's data (not synthesised)
    batch_size: Optional[int] = None  # the training batch size (the example's rows are not, when synthesised)
    loss_fn: Optional[Callable[..., Any]] = None
    make_optimizer: Optional[Callable[[nn.Module], Any]] = None
    user_optimizer: bool = False  # the target defines its own optimizer


@dataclass
class PartialContext:
    """What static probes get when the target loaded but could not be prepared (no batch, a forward that raises)."""

    setup: Any
    metrics: Any
    device: torch.device
    seed: int = 0
    partial: bool = True


def inputs_from(ctx: Any) -> StaticInputs:
    """StaticInputs from a probe Context, or from a PartialContext."""
    setup = ctx.setup
    sites = setup.sites or Sites(setup.path)
    if getattr(ctx, "partial", False):
        return StaticInputs(model=setup.model, target=setup.path, sites=sites, loss_fn=setup.loss_fn,
                            batch_size=setup.batch_size,
                            make_optimizer=setup.make_optimizer, user_optimizer=setup.make_optimizer is not None)
    x, y = ctx.train_batches[0] if ctx.train_batches else (None, None)
    batch = int(x.shape[0]) if x is not None and x.dim() > 0 and not ctx.synthetic else setup.batch_size
    return StaticInputs(model=setup.model, target=setup.path, sites=sites, x=x, y=y, real_targets=not ctx.synthetic,
                        batch_size=batch,
                        loss_fn=ctx.loss_fn, make_optimizer=ctx.make_optimizer,
                        user_optimizer=setup.make_optimizer is not None)


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Run the model in train mode (as the loss sees it) without changing its buffers, mode or the RNG."""
    modes = {m: m.training for m in model.modules()}
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.train()
            yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, mode in modes.items():
            m.training = mode


@dataclass
class Analysis:
    inputs: StaticInputs
    notes: list[str] = field(default_factory=list)  # what could not be analysed, and why, for the report
    # The rows of the example batch the forward pass ran on (set by `graph`), and their targets.
    example: tuple[Optional[torch.Tensor], Optional[torch.Tensor]] = (None, None)

    @property
    def model(self) -> nn.Module:
        return self.inputs.model

    def _where(self, exc: BaseException) -> str:
        file, line = user_frame(exc.__traceback__, self.inputs.target)
        return f" at {fmt_site(file, line)}" if file else ""

    @cached_property
    def graph(self) -> Optional[Graph]:
        """torch.fx's graph with shapes; else one hooked forward pass; None when neither works."""
        from doctor.collect.static.trace_fx import propagate_shapes, trace_fx  # noqa: PLC0415
        from doctor.collect.static.trace_hooked import trace_hooked  # noqa: PLC0415

        attempts = self._examples()
        fx_graph: Optional[Graph] = None
        fx_problem = ""
        try:
            with untouched(self.model):
                fx_graph, gm = trace_fx(self.model, self.inputs.sites)
        except Exception as exc:  # noqa: BLE001 - fx refuses data-dependent control flow and more
            fx_problem = f"{describe(exc)}{self._where(exc)}"
        if fx_graph is not None:
            for xs, ys in attempts:
                try:
                    with untouched(self.model):
                        propagate_shapes(fx_graph, gm, xs)
                except Exception:  # noqa: BLE001 - the graph stands without shapes; the forward is tried below
                    fx_graph.output_value = None
                    continue
                if self._batch_first(fx_graph, xs):
                    self.example = (xs, ys)
                    return fx_graph
            if not attempts:
                return fx_graph
        if not attempts:
            self.notes.append(f"Static analysis: torch.fx could not trace the model ({fx_problem}), and there is no "
                              "example batch for a recorded forward pass; the graph checks were skipped.")
            return None
        graph, error = None, None
        for xs, ys in attempts:
            try:
                with untouched(self.model):
                    graph = trace_hooked(self.model, xs, self.inputs.sites)
            except Exception as exc:  # noqa: BLE001 - the user's forward may raise anything
                error = error or exc
                graph = None
                continue
            if self._batch_first(graph, xs):
                self.example = (xs, ys)
                break
        if graph is None:
            exc = error
            raised = f"one forward pass on the example batch raised ({describe(exc)}{self._where(exc)})"
            if fx_graph is not None:
                self.notes.append(f"Static analysis: {raised}; the checks that need the output's values were "
                                  "skipped." + _kwargs_hint(exc))
                return fx_graph
            self.notes.append(f"Static analysis: torch.fx could not trace the model ({fx_problem}) and {raised}; "
                              "the graph checks were skipped." + _kwargs_hint(exc))
            return None
        if fx_graph is None:
            self.notes.append(f"Static analysis: torch.fx could not trace the model ({fx_problem}); the graph checks "
                              "used one recorded forward pass instead.")
        return graph

    def _examples(self) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        """The example batch to run, a few rows first (cheap on big inputs), then all of it."""
        x, y = self.inputs.x, self.inputs.y
        if x is None:
            return []
        n = int(x.shape[0]) if x.dim() else 0
        out = []
        if n > SLICE and (y is None or (y.dim() > 0 and y.shape[0] == n)):
            out.append((x[:SLICE], y[:SLICE] if y is not None else None))
        return out + [(x, y)]

    def _batch_first(self, graph: Graph, xs: torch.Tensor) -> bool:
        """The output has one row per input row, so the rows kept from the batch line up with their targets."""
        out = graph.output_value
        if xs is self.inputs.x:
            return True
        return isinstance(out, torch.Tensor) and out.dim() > 0 and out.shape[0] == xs.shape[0]

    def full_shape(self, t: torch.Tensor) -> tuple[int, ...]:
        """A tensor's shape as the whole example batch would give it (dim 0 scaled back up when rows were cut)."""
        shape = tuple(t.shape)
        xs, _ = self.example
        x = self.inputs.x
        if x is not None and xs is not None and xs is not x and shape and shape[0] == xs.shape[0]:
            shape = (int(x.shape[0]),) + shape[1:]
        return shape

    @cached_property
    def output(self) -> Optional[torch.Tensor]:
        """The model's output on the example batch (first tensor of a tuple or dict)."""
        g = self.graph
        return g.output_value if g is not None else None

    @cached_property
    def loss(self) -> Optional[LossTrace]:
        """The loss function run once on the output, recorded; None without an output or a loss."""
        out, y = self.output, self.example[1]
        if out is None or y is None or self.inputs.loss_fn is None:
            return None
        with untouched(self.model):
            return trace_loss(self.inputs.loss_fn, out, y, self.inputs.sites)

    @cached_property
    def optimizer(self) -> Optional[torch.optim.Optimizer]:
        make = self.inputs.make_optimizer
        if make is None:
            return None
        try:
            opt = make(self.model)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"Static analysis: building the optimizer raised ({describe(exc)}{self._where(exc)}); "
                              "the optimizer checks were skipped.")
            return None
        return opt if isinstance(opt, torch.optim.Optimizer) else None

    @cached_property
    def source(self) -> Optional[SourceFacts]:
        try:
            return read_source(self.inputs.target)
        except SourceUnavailable as exc:
            self.notes.append(f"Static analysis: the source of the target is unavailable ({exc}); the source checks "
                              "(functional dropout, train_step, gradient clipping, schedulers) were skipped.")
            return None

    @cached_property
    def forward_layers(self) -> list[Op]:
        """Module ops in forward order (once each), from the graph."""
        g = self.graph
        if g is None:
            return []
        seen: set[str] = set()
        out = []
        for op in g.modules():
            if op.path not in seen:
                seen.add(op.path)
                out.append(op)
        return out

    @cached_property
    def output_layer(self) -> Optional[str]:
        """The weight layer nearest the output: from the graph, else the last weight layer defined."""
        g = self.graph
        if g is not None and g.output is not None:
            todo, seen = [g.output], set()
            while todo:
                i = todo.pop(0)
                if i in seen:
                    continue
                seen.add(i)
                op = g.ops[i]
                if op.is_linear_layer:
                    return op.path
                todo.extend(op.inputs)
        weights = [n for n, m in self.model.named_modules() if n and _has_weight(m)]
        return weights[-1] if weights else None


def _has_weight(m: nn.Module) -> bool:
    return isinstance(m, LINEAR_TYPES) and isinstance(getattr(m, "weight", None), torch.Tensor)


def _kwargs_hint(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, TypeError) and ("required" in text or "argument" in text):
        return (" The forward seems to need arguments besides the input; doctor passes one input tensor, so give "
                "the others default values or wrap the model.")
    return ""
