"""The live run's statistics, reduced on the device: per-layer gradient norms every step, update/weight
ratios and dead or saturated activations on sampled steps. Read back only when the monitor judges.

Every hook is held in one HookSet and every callback goes through `guard`, so an error in doctor's own code
disables the monitor instead of raising inside the user's forward or optimizer step.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from doctor.collect.instrument import DEAD_THRESHOLD, RELU_FAMILY, GradStats, HookSet, layer_norms

SATURATION = {"sigmoid": 0.01, "tanh": 0.99}
# Inputs per unit (samples times positions) before a dead fraction is read: at the 0.1% threshold fewer
# than ~3000 cannot tell a dead unit from a sparse one.
MIN_INPUTS = 4096  # sigmoid below 0.01 or above 0.99; |tanh| above 0.99


def param_layers(model: nn.Module) -> list[str]:
    """Modules that own trainable parameters directly, in definition order (a live run has no probe forward)."""
    return [n for n, m in model.named_modules() if any(p.requires_grad for p in m.parameters(recurse=False))]


class LiveStats:
    """Device buffers for one judging window of `window` steps; `read()` empties them into host numbers."""

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer], window: int,
                 guard: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.model, self.optimizer, self.guard = model, optimizer, guard
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.layers = param_layers(model)
        self.window = window
        self.grads = GradStats(model, self.layers, window, self.device)
        self.losses: list[Any] = []  # the steps' detached losses: no kernel per step, one stack per read
        self.sampled: list[int] = []  # the window's steps whose gradient norms were recorded
        self.filled = 0
        self.hooks = HookSet()
        self.sampling = False  # True for the steps whose updates and activations are measured
        self._snap: Optional[list[torch.Tensor]] = None
        self._upd_sum = torch.zeros(len(self.grads.layers), device=self.device)
        self._upd_n = 0
        self._acts: dict[str, dict[str, Any]] = {}

    # -- hooks ---------------------------------------------------------------------------------
    def attach(self) -> "LiveStats":
        """Nothing is hooked between samples: the hooks go on for one sampled step (`arm`) and come off after."""
        self._kinds = []
        for name, mod in self.model.named_modules():
            kind = ("relu" if isinstance(mod, RELU_FAMILY) else "sigmoid" if isinstance(mod, nn.Sigmoid)
                    else "tanh" if isinstance(mod, nn.Tanh) else None)
            if kind is None:
                continue
            self._kinds.append((mod, self.guard(self._act_hook(name, kind))))
        return self

    def arm(self) -> None:
        """Hooks for the next step only: a hooked module leaves PyTorch's fast call path, which a small
        model pays for on every step."""
        if self.sampling:
            return
        self.sampling = True
        for mod, hook in self._kinds:
            self.hooks.add(mod.register_forward_hook(hook))
        if self.optimizer is not None and self.grads.params:
            self.hooks.add(self.optimizer.register_step_pre_hook(self.guard(self._before_step)))
            self.hooks.add(self.optimizer.register_step_post_hook(self.guard(self._after_step)))

    def disarm(self) -> None:
        self.sampling = False
        self.hooks.remove()
        self._snap = None

    def detach(self) -> None:
        self.disarm()

    def _act_hook(self, name: str, kind: str) -> Callable[..., None]:
        def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
            if not mod.training or not isinstance(out, torch.Tensor) or out.dim() < 2:
                return
            with torch.no_grad():
                slot = self._acts.get(name)
                unit_dim = 1 if out.dim() in (2, 4, 5) else out.dim() - 1
                if kind == "relu":
                    dims = [d for d in range(out.dim()) if d != unit_dim]
                    pos = (out > 0).sum(dim=dims)
                    if slot is None or slot["pos"].shape != pos.shape:
                        slot = self._acts[name] = {"kind": kind, "pos": torch.zeros_like(pos), "per_unit": 0}
                    slot["pos"] += pos
                    slot["per_unit"] += out.numel() // out.shape[unit_dim]
                else:
                    flat = (out < SATURATION["sigmoid"]) | (out > 1 - SATURATION["sigmoid"]) if kind == "sigmoid" \
                        else out.abs() > SATURATION["tanh"]
                    if slot is None:
                        slot = self._acts[name] = {"kind": kind, "sat": torch.zeros((), device=out.device,
                                                                                     dtype=torch.long), "n": 0}
                    slot["sat"] += flat.sum()
                    slot["n"] += out.numel()
        return hook

    def _before_step(self, *_: Any) -> None:
        if self.sampling:
            # One copy of the weights for the length of the optimizer's step, only on sampled steps.
            self._snap = [p.detach().clone() for p in self.grads.params]

    def _after_step(self, *_: Any) -> None:
        if self._snap is None:
            return
        cur = [p.detach() for p in self.grads.params]
        diff = torch._foreach_sub(cur, self._snap)
        # The updates' and the old weights' norms in one pass.
        upd, wn = layer_norms([*diff, *self._snap], self.grads.index, len(self.grads.layers), 2)
        self._upd_sum += torch.where(wn > 0, upd / wn.clamp_min(1e-30), torch.full_like(upd, float("nan")))
        self._upd_n += 1
        self._snap = None

    # -- per step --------------------------------------------------------------------------------
    def record(self, loss: Any, sample: bool) -> None:
        """The step's loss, and on a sampled step its per-layer gradient norms (device ops only, no sync)."""
        i = self.filled
        self.losses.append(loss.detach() if isinstance(loss, torch.Tensor) else float(loss))
        if sample:
            # A full pass over the gradients costs about what a plain SGD step does: on a sample of steps only.
            self.grads.record(i)
            self.sampled.append(i)
        if self.sampling:
            self.disarm()
        self.filled = i + 1

    def full(self) -> bool:
        return self.filled >= self.window

    def read(self) -> dict[str, Any]:
        """Everything since the last read, as host numbers; the buffers start over (one read per window)."""
        n = self.filled
        losses = self.losses
        values = None
        if losses and isinstance(losses[0], torch.Tensor) and losses[0].dim() == 0:
            try:  # the usual case, scalar losses on one device: one stack, one read
                values = torch.stack(losses).float().tolist()
            except (RuntimeError, TypeError):  # mixed devices, shapes or dtypes, or a float among the tensors
                values = None
        if values is None:
            tensors = [v.reshape(-1)[:1].float() if isinstance(v, torch.Tensor) else
                       torch.tensor([v], dtype=torch.float32, device=self.device) for v in losses]
            values = torch.cat(tensors).tolist() if tensors else []
        out: dict[str, Any] = {"losses": values, "steps": n, "sampled": list(self.sampled)}
        if self.sampled and self.grads.layers:
            rows = torch.tensor(self.sampled, device=self.device)
            norms = self.grads.norms.index_select(0, rows).cpu()
            out["layer_norms"] = {name: norms[:, j] for j, name in enumerate(self.grads.layers)}
            out["total"] = self.grads.total.index_select(0, rows).tolist()
        if self._upd_n:
            ratios = (self._upd_sum / self._upd_n).cpu()
            out["update_ratio"] = {name: float(ratios[j]) for j, name in enumerate(self.grads.layers)
                                   if torch.isfinite(ratios[j])}
        acts = {}
        for name, slot in list(self._acts.items()):
            # A unit silent on a few dozen inputs is not dead: wait until each unit has seen MIN_INPUTS.
            if (slot["per_unit"] if slot["kind"] == "relu" else slot["n"]) < MIN_INPUTS:
                continue
            del self._acts[name]
            if slot["kind"] == "relu" and slot["per_unit"]:
                frac = slot["pos"].double().cpu() / slot["per_unit"]
                acts[name] = {"act.kind": "relu", "act.units": int(frac.numel()),
                              "act.dead_frac": float((frac < DEAD_THRESHOLD).double().mean()),
                              "act.active_frac": float(frac.mean())}
            elif slot["kind"] != "relu" and slot["n"]:
                acts[name] = {"act.kind": slot["kind"], "act.saturated_frac": float(slot["sat"].cpu()) / slot["n"]}
        out["acts"] = acts
        self.filled = 0
        self.losses, self.sampled = [], []
        self.grads.norms.fill_(float("nan"))
        self.grads.total.fill_(float("nan"))
        self.grads.steps_recorded = 0
        self._upd_sum.zero_()
        self._upd_n = 0
        return out
