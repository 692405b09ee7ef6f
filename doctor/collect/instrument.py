"""Instruments for training bursts: every hook held in one place, statistics reduced on the device.

Nothing here calls `.item()`, `.cpu()` or `.tolist()` while recording: values accumulate in
preallocated device tensors and are read once, by `summary()`, after the burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

RELU_FAMILY = (nn.ReLU, nn.ReLU6)
SATURATING = (nn.Sigmoid, nn.Tanh)
DEAD_THRESHOLD = 0.01  # a unit active on fewer than 1% of inputs counts as dead


class HookSet:
    """Owns every hook handle doctor registers, so one `remove()` in `finally` undoes them all."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def add(self, handle: Any) -> None:
        self._handles.append(handle)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> "HookSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def forward_order(model: nn.Module, run_forward: Callable[[], Any]) -> list[str]:
    """Names of modules that own parameters directly, in the order one forward pass first calls them."""
    order: list[str] = []
    seen: set[str] = set()
    hooks = HookSet()
    try:
        for name, mod in model.named_modules():
            if any(True for _ in mod.parameters(recurse=False)):
                def pre(_m: nn.Module, _inp: Any, _name: str = name) -> None:
                    if _name not in seen:
                        seen.add(_name)
                        order.append(_name)
                hooks.add(mod.register_forward_pre_hook(pre))
        with torch.no_grad():
            run_forward()
    finally:
        hooks.remove()
    # Modules with parameters that the forward never called keep their definition order, at the end.
    for name, mod in model.named_modules():
        if name not in seen and any(True for _ in mod.parameters(recurse=False)):
            order.append(name)
    return order


class GradStats:
    """Per-layer gradient norms per step into a (steps, layers) device buffer: three kernels a step."""

    def __init__(self, model: nn.Module, layer_order: list[str], steps: int, device: torch.device) -> None:
        modules = dict(model.named_modules())
        self.layers: list[str] = []
        self.params: list[nn.Parameter] = []
        index: list[int] = []
        numel: list[int] = []
        for name in layer_order:
            ps = [p for p in modules[name].parameters(recurse=False) if p.requires_grad]
            if not ps:
                continue  # frozen layers are not expected to have gradients
            li = len(self.layers)
            self.layers.append(name)
            numel.append(sum(p.numel() for p in ps))
            for p in ps:
                self.params.append(p)
                index.append(li)
        self.device = device
        self._layer_of = index
        self.index = torch.tensor(index, dtype=torch.long, device=device)
        self.numel = numel
        self.norms = torch.full((steps, len(self.layers)), float("nan"), device=device)
        self.total = torch.full((steps,), float("nan"), device=device)
        self._zero = torch.zeros((), device=device)
        self.steps_recorded = 0

    def record(self, step: int) -> None:
        if not self.params:
            return
        grads = [p.grad if p.grad is not None else self._zero for p in self.params]
        sq = torch.stack(torch._foreach_norm(grads)).float().square()
        layer_sq = torch.zeros(len(self.layers), device=self.device).index_add_(0, self.index, sq)
        self.norms[step] = layer_sq.sqrt()
        # The global norm is non-finite exactly when some gradient element is.
        self.total[step] = sq.sum().sqrt()
        if any(p.grad is None for p in self.params):
            # A layer with no gradient at all this step is "not measured", not zero (host-side check).
            present = {li for li, p in zip(self._layer_of, self.params) if p.grad is not None}
            absent = sorted(set(self._layer_of) - present)
            if absent:
                self.norms[step, absent] = float("nan")
        self.steps_recorded = max(self.steps_recorded, step + 1)

    def summary(self) -> dict[str, Any]:
        """Read the buffers back once and reduce them to per-layer medians and maxima."""
        n = self.steps_recorded
        norms = self.norms[:n].cpu()
        total = self.total[:n].cpu()
        out: dict[str, Any] = {"layers": {}, "steps": n}
        if n == 0 or not self.layers:
            return out
        finite_total = total[torch.isfinite(total)]
        out["nonfinite"] = bool((~torch.isfinite(total)).any())
        out["total"] = total.tolist()
        out["total_norm_max"] = float(finite_total.max()) if finite_total.numel() else float("inf")
        out["total_norm_median"] = float(finite_total.median()) if finite_total.numel() else float("inf")
        for j, name in enumerate(self.layers):
            col = norms[:, j]
            col = col[torch.isfinite(col)]
            if col.numel() == 0:
                continue
            med = float(col.median())
            out["layers"][name] = {
                "grad.norm": med,
                "grad.norm_max": float(col.max()),
                "grad.rms": med / math.sqrt(self.numel[j]),
            }
        return out


@dataclass
class _ActSlot:
    kind: str
    unit_dim: int
    units: int
    positive: Optional[torch.Tensor] = None  # per-unit count of positive outputs (ReLU family)
    saturated: Optional[torch.Tensor] = None  # count of saturated outputs (sigmoid/tanh)
    per_unit: int = 0  # samples seen per unit
    elements: int = 0


def _unit_dim(t: torch.Tensor) -> int:
    # Units are channels for images (N, C, ...), features for (N, F), and the last dim of
    # sequences (N, L, F): the layouts Linear, Conv and batch-first Transformers produce.
    if t.dim() in (2, 4, 5):
        return 1
    return t.dim() - 1


@dataclass
class ActStats:
    """Dead units (ReLU family) and saturation (sigmoid/tanh) per activation layer, counted on device."""

    model: nn.Module
    active: bool = False  # record only while True, so a burst can measure its last steps
    slots: dict[str, _ActSlot] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    hooks: HookSet = field(default_factory=HookSet)
    _calls: dict[str, int] = field(default_factory=dict)

    def attach(self) -> "ActStats":
        for name, mod in self.model.named_modules():
            if isinstance(mod, RELU_FAMILY):
                kind = "relu"
            elif isinstance(mod, nn.Sigmoid):
                kind = "sigmoid"
            elif isinstance(mod, nn.Tanh):
                kind = "tanh"
            else:
                continue
            self.types[name] = type(mod).__name__
            self.hooks.add(mod.register_forward_hook(self._make_hook(name, kind)))
        # A module called twice per forward (torchvision's BasicBlock reuses its ReLU) gets one
        # slot per call; the root's pre-hook restarts the call count each forward.
        self.hooks.add(self.model.register_forward_pre_hook(lambda *_: self._calls.clear()))
        return self

    def _make_hook(self, name: str, kind: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
            if not self.active or not isinstance(out, torch.Tensor):
                return
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            key = name if call == 0 else f"{name}#{call + 1}"
            o = out.detach()
            slot = self.slots.get(key)
            dim = _unit_dim(o)
            units = o.shape[dim] if o.dim() > 0 else 1
            if slot is None or slot.units != units:
                slot = _ActSlot(kind=kind, unit_dim=dim, units=units)
                if kind == "relu":
                    slot.positive = torch.zeros(units, dtype=torch.long, device=o.device)
                else:
                    slot.saturated = torch.zeros((), dtype=torch.long, device=o.device)
                self.slots[key] = slot
                self.types.setdefault(key, self.types.get(name, ""))
            if kind == "relu":
                dims = [d for d in range(o.dim()) if d != dim]
                slot.positive += (o > 0).sum(dim=dims) if dims else (o > 0).long()
                slot.per_unit += o.numel() // max(units, 1)
            elif kind == "sigmoid":
                slot.saturated += ((o < 0.01) | (o > 0.99)).sum()
            else:
                slot.saturated += (o.abs() > 0.99).sum()
            slot.elements += o.numel()
        return hook

    def detach(self) -> None:
        self.hooks.remove()

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-layer dead/active/saturated fractions, read back once."""
        out: dict[str, dict[str, Any]] = {}
        for key, slot in self.slots.items():
            if slot.elements == 0:
                continue
            row: dict[str, Any] = {"act.kind": slot.kind, "act.units": slot.units}
            if slot.positive is not None and slot.per_unit:
                frac = slot.positive.double().cpu() / slot.per_unit
                row["act.dead_frac"] = float((frac < DEAD_THRESHOLD).double().mean())
                row["act.active_frac"] = float(frac.mean())
            if slot.saturated is not None:
                row["act.saturated_frac"] = float(slot.saturated.cpu()) / slot.elements
            out[key] = row
        return out
