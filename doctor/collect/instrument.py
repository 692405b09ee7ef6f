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
DEAD_THRESHOLD = 0.001  # a unit active on fewer than 1 in 1000 inputs counts as dead: it gets (almost) no gradient.
# 1% was too loose: a trained conv layer has sparse detectors (a channel for dots, on 0.3% of positions) that
# still learn from the inputs they fire on; a unit killed by a bad bias or a large step fires on none.


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


def layer_norms(tensors: list[torch.Tensor], index: torch.Tensor, n_layers: int, groups: int = 1) -> torch.Tensor:
    """(groups, n_layers) norms of `groups` lists of tensors laid end to end, each summed into its layer by
    `index` (one _foreach_norm for all of them); (n_layers,) when groups is 1."""
    sq = torch.stack(torch._foreach_norm(tensors)).float().square().view(groups, -1)
    out = torch.zeros(groups, n_layers, device=index.device).index_add_(1, index, sq).sqrt()
    return out[0] if groups == 1 else out


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
        return reduce_norms(self.norms[:n].cpu(), self.total[:n].cpu(), self.layers, self.numel)


def reduce_norms(norms: torch.Tensor, total: torch.Tensor, layers: list[str], numel: list[int]) -> dict[str, Any]:
    """(steps, layers) gradient norms and (steps,) global norms, on the host, as per-layer medians and maxima."""
    n = int(total.shape[0])
    out: dict[str, Any] = {"layers": {}, "steps": n}
    if n == 0 or not layers:
        return out
    finite_total = total[torch.isfinite(total)]
    out["nonfinite"] = bool((~torch.isfinite(total)).any())
    out["total"] = total.tolist()
    out["total_norm_max"] = float(finite_total.max()) if finite_total.numel() else float("inf")
    out["total_norm_median"] = float(finite_total.median()) if finite_total.numel() else float("inf")
    for j, name in enumerate(layers):
        col = norms[:, j]
        col = col[torch.isfinite(col)]
        if col.numel() == 0:
            continue
        med = float(col.median())
        out["layers"][name] = {
            "grad.norm": med,
            "grad.norm_max": float(col.max()),
            "grad.rms": med / math.sqrt(numel[j]),
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


def _functional_kinds() -> dict[Any, str]:
    """The functional and tensor-method activations, as the function a TorchFunctionMode is handed."""
    import torch.nn.functional as F  # noqa: PLC0415, N812

    kinds: dict[Any, str] = {}
    for kind, funcs in {
        "relu": (torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, torch.Tensor.relu, torch.Tensor.relu_),
        "sigmoid": (torch.sigmoid, torch.sigmoid_, F.sigmoid, torch.special.expit, torch.Tensor.sigmoid,
                    torch.Tensor.sigmoid_),
        "tanh": (torch.tanh, torch.tanh_, F.tanh, torch.Tensor.tanh, torch.Tensor.tanh_),
    }.items():
        for fn in funcs:
            kinds[fn] = kind
    return kinds


_TORCH_DIR = __import__("os").path.dirname(torch.__file__)
_ACTIVATION_MODULES = __import__("os").path.join("nn", "modules", "activation.py")


class _FunctionalWatch(torch.overrides.TorchFunctionMode):
    """Sees F.relu / torch.sigmoid / x.tanh() called in a forward, which no module hook can."""

    def __init__(self, stats: "ActStats") -> None:
        super().__init__()
        self.stats = stats
        self.kinds = _functional_kinds()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kind = self.kinds.get(func)
        if kind is not None and isinstance(out, torch.Tensor):
            self.stats.functional(kind, getattr(func, "__name__", kind).rstrip("_"), out)
        return out


@dataclass
class ActStats:
    """Dead units (ReLU family) and saturation (sigmoid/tanh) per activation, counted on device.

    Activation modules are hooked; functional activations (F.relu, torch.sigmoid, x.tanh(), ...)
    are seen by a TorchFunctionMode pushed for the duration of each recorded forward, and named
    after the module whose forward calls them ("block1.relu()", "relu()" in the model's own
    forward). An activation whose output is the model's output is a prediction, not a hidden
    unit, and is not counted: a confident sigmoid output is not saturation.
    """

    model: nn.Module
    active: bool = False  # record only while True, so a burst can measure its last steps
    slots: dict[str, _ActSlot] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)  # functional activation -> "file:line" of the call
    hooks: HookSet = field(default_factory=HookSet)
    _calls: dict[str, int] = field(default_factory=dict)
    _pending: list[tuple[str, str, torch.Tensor]] = field(default_factory=list)
    _names: dict[int, str] = field(default_factory=dict)
    _mode: Optional[_FunctionalWatch] = None
    _in_mode: bool = False

    def attach(self) -> "ActStats":
        for name, mod in self.model.named_modules():
            self._names[id(mod)] = name
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
        self._mode = _FunctionalWatch(self)
        # A module called twice per forward (torchvision's BasicBlock reuses its ReLU) gets one
        # slot per call; the root's pre-hook restarts the call count each forward.
        self.hooks.add(self.model.register_forward_pre_hook(self._begin))
        self.hooks.add(self.model.register_forward_hook(self._end, always_call=True))
        return self

    def _begin(self, *_: Any) -> None:
        self._calls.clear()
        self._flush(None)
        self._leave_mode()
        if self.active and self._mode is not None:
            self._mode.__enter__()
            self._in_mode = True

    def _end(self, _m: nn.Module, _inp: Any, out: Any) -> None:
        self._leave_mode()
        self._flush(out)

    def _leave_mode(self) -> None:
        if self._in_mode and self._mode is not None:
            self._in_mode = False
            try:
                self._mode.__exit__(None, None, None)
            except Exception:  # another mode pushed above ours and not popped: nothing more to undo
                pass

    def _make_hook(self, name: str, kind: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
            if not self.active or not isinstance(out, torch.Tensor):
                return
            self._note(name, kind, out)
        return hook

    def functional(self, kind: str, fn: str, out: torch.Tensor) -> None:
        """A functional activation returned `out` inside a recorded forward."""
        if not self.active:
            return
        import sys  # noqa: PLC0415

        # The innermost caller that is a module of the model owns the call; an activation module's
        # own F.relu is skipped (its hook counts it), and a call from outside the model (a loss,
        # a metric in the step) is not a hidden activation.
        frame, depth = sys._getframe(2), 0  # above the mode's __torch_function__
        owner = None
        while frame is not None and depth < 16:
            code = frame.f_code
            if code.co_filename.endswith(_ACTIVATION_MODULES) and code.co_filename.startswith(_TORCH_DIR):
                return
            if code.co_varnames[:1] == ("self",):
                me = frame.f_locals.get("self")
                if isinstance(me, nn.Module) and id(me) in self._names:
                    owner = me
                    break
            frame, depth = frame.f_back, depth + 1
        if owner is None or frame is None:
            return
        mod = self._names[id(owner)]
        name = f"{mod}.{fn}()" if mod else f"{fn}()"
        if name not in self.types:
            self.types[name] = f"torch.{fn}"
            where = frame.f_code.co_filename
            if not where.startswith(_TORCH_DIR) and "-packages" not in where:
                self.sites[name] = f"{where}:{frame.f_lineno}"
        self._note(name, kind, out)

    def _note(self, name: str, kind: str, out: torch.Tensor) -> None:
        call = self._calls.get(name, 0)
        self._calls[name] = call + 1
        key = name if call == 0 else f"{name}#{call + 1}"
        self._pending.append((key, kind, out.detach()))
        self.types.setdefault(key, self.types.get(name, ""))

    def _flush(self, model_out: Any) -> None:
        """Reduce the forward's activations on the device, leaving out the one that is the model's output."""
        if isinstance(model_out, torch.Tensor):
            outs = [model_out]
        elif isinstance(model_out, dict):
            outs = [v for v in model_out.values() if isinstance(v, torch.Tensor)]
        elif isinstance(model_out, (tuple, list)):
            outs = [v for v in model_out if isinstance(v, torch.Tensor)]
        else:
            outs = []
        pending, self._pending = self._pending, []
        for key, kind, o in pending:
            if any(o.data_ptr() == t.data_ptr() and o.numel() == t.numel() for t in outs):  # views too
                continue
            self._record(key, kind, o)

    def _record(self, key: str, kind: str, o: torch.Tensor) -> None:
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
        if kind == "relu":
            dims = [d for d in range(o.dim()) if d != dim]
            slot.positive += (o > 0).sum(dim=dims) if dims else (o > 0).long()
            slot.per_unit += o.numel() // max(units, 1)
        elif kind == "sigmoid":
            slot.saturated += ((o < 0.01) | (o > 0.99)).sum()
        else:
            slot.saturated += (o.abs() > 0.99).sum()
        slot.elements += o.numel()

    def detach(self) -> None:
        self._leave_mode()
        self._flush(None)
        self.hooks.remove()

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-layer dead/active/saturated fractions, read back once."""
        self._flush(None)
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


class UpdateStats:
    """Per-layer update/weight ratio each step, and which parameters never get a gradient or cannot move.

    `after_backward()` notes (on the host: no sync) which parameters hold a gradient at all;
    `after_step(step)` compares the weights with the copy taken before the step, on the device.
    Frozen parameters (requires_grad=False) are left out: not moving is what they are for.
    Nothing is read back until `summary()`.
    """

    def __init__(self, model: nn.Module, layer_order: list[str], steps: int, device: torch.device,
                 optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        modules = dict(model.named_modules())
        self.layers: list[str] = []
        self.params: list[nn.Parameter] = []
        self.param_names: list[str] = []
        index: list[int] = []
        for name in layer_order:
            named = [(n, p) for n, p in modules[name].named_parameters(recurse=False) if p.requires_grad]
            if not named:
                continue
            li = len(self.layers)
            self.layers.append(name)
            for pname, p in named:
                self.params.append(p)
                self.param_names.append(f"{name}.{pname}" if name else pname)
                index.append(li)
        # A parameter the optimizer does not hold, or holds at rate 0, cannot move whatever its gradient.
        rate = {id(p): g.get("lr") for g in (optimizer.param_groups if optimizer else []) for p in g["params"]}
        self.stuck = [optimizer is not None and (id(p) not in rate or rate[id(p)] == 0) for p in self.params]
        self.device = device
        self.index = torch.tensor(index, dtype=torch.long, device=device)
        self.prev = [p.detach().clone() for p in self.params]
        self.init_norm = (layer_norms(self.prev, self.index, len(self.layers)) if self.params
                          else torch.zeros(0, device=device))
        self.ratios = torch.full((steps, len(self.layers)), float("nan"), device=device)
        self.got_grad = [False] * len(self.params)
        self.steps_recorded = 0

    def after_backward(self) -> None:
        # Whether autograd reached a parameter at all is known on the host. A gradient of exact
        # zeros (dead or saturated units) still counts as reached: the rules for those say why.
        if self.steps_recorded >= self.ratios.shape[0]:
            return  # past the steps it measures, like after_step
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.got_grad[i] = True

    def after_step(self, step: int) -> None:
        if not self.params or step >= self.ratios.shape[0]:
            return
        cur = [p.detach() for p in self.params]
        diff = torch._foreach_sub(cur, self.prev)
        upd, prev = layer_norms([*diff, *self.prev], self.index, len(self.layers), 2)
        self.ratios[step] = upd / prev
        torch._foreach_copy_(self.prev, cur)
        self.steps_recorded = max(self.steps_recorded, step + 1)

    def summary(self) -> dict[str, Any]:
        """Median ratio per layer (layers whose weights start at zero have none), the parameters autograd
        never reached, and those it reached that the optimizer cannot move; one read of the buffers."""
        n = self.steps_recorded
        out: dict[str, Any] = {"steps": n, "ratio": {}, "no_grad": [], "not_moved": [], "params": len(self.params)}
        if n == 0 or not self.params:
            return out
        ratios = self.ratios[:n].cpu()
        init_norm = self.init_norm.cpu()
        for j, name in enumerate(self.layers):
            col = ratios[:, j]
            col = col[torch.isfinite(col)]
            if float(init_norm[j]) > 0 and col.numel():
                out["ratio"][name] = float(col.median())
        for pname, got, stuck in zip(self.param_names, self.got_grad, self.stuck):
            if not got:
                out["no_grad"].append(pname)
            elif stuck:
                out["not_moved"].append(pname)
        return out


def recalibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor],
                          forward: Callable[[nn.Module, torch.Tensor], Any]) -> None:
    """Replace BatchNorm running statistics by the exact average over `batches` (train-mode passes with
    momentum=None, variances as train mode computes them), then restore each layer's momentum; a no-op
    without BatchNorm.

    A short probe cannot wait for running statistics to converge (torchvision's MobileNetV3 uses
    momentum 0.01: hundreds of steps); without this, eval mode after a burst measures that lag.
    """
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    saved = [(m, m.momentum, m.training) for m in norms]
    counts: dict[nn.Module, list[int]] = {m: [] for m in norms}  # values per channel in each pass

    def count(mod: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
            counts[mod].append(args[0].numel() // max(args[0].shape[1], 1))

    handles = [m.register_forward_pre_hook(count) for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the passes below
            m.train()
        with torch.no_grad():
            for x in batches:
                forward(model, x)
            # Train mode normalises by the batch's biased variance, running_var stores the unbiased one: on
            # few values per channel (8 samples after global pooling) that n/(n-1) alone separates the modes.
            for m, ns in counts.items():
                if ns and m.running_var is not None:
                    factor = sum((n - 1) / n for n in ns if n > 1) / max(sum(1 for n in ns if n > 1), 1)
                    m.running_var.mul_(factor)
    finally:
        for h in handles:
            h.remove()
        for m, momentum, training in saved:
            m.momentum = momentum
            m.train(training)
