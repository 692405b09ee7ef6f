"""Checks of the target's own train_step: are gradients zeroed, is clipping placed where it acts, does it step?

Calls `train_step(model, batch, optimizer, loss_fn)` a few times from the initial weights and
watches from the outside, without changing what the step does: a hook on every parameter sees the
gradient left over from earlier steps at the first backward after each optimizer step, the
optimizer's step hooks see the gradient it is given, and the clipping functions are wrapped for the
duration to see when they are called relative to backward and step.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.utils as nn_utils
import torch.nn.utils.clip_grad as clip_grad_mod

from doctor.collect.data import cycle
from doctor.collect.inject import call_injected
from doctor.collect.probes import Probe, SkipProbe

CLIP_NAMES = ("clip_grad_norm_", "clip_grad_norm", "clip_grad_value_")


class _Watch:
    """What happened inside the calls: an event trail on the host, gradient sizes on the device."""

    def __init__(self, params: list[torch.nn.Parameter], device: torch.device) -> None:
        self.params = params
        self.armed = [True] * len(params)  # the next gradient into this parameter is the first since a step
        self.last = ""  # last event: "B" backward, "C" clip, "S" step
        self.pending_clips = 0  # clips since the last backward, not yet followed by a step
        self.clips = 0
        self.clips_ineffective = 0
        self.steps = 0
        self.backward_events = 0
        self.stale_sq = torch.zeros((), device=device)
        self.fresh_sq = torch.zeros((), device=device)
        self.step_sq = torch.zeros((), device=device)
        self.empty_steps = torch.zeros((), device=device)

    def on_grad(self, i: int, grad: torch.Tensor) -> None:
        p = self.params[i]
        if self.last != "B":
            self.backward_events += 1
            # A clip followed by a backward (before any step) clipped gradients that are then overwritten.
            self.clips_ineffective += self.pending_clips
            self.pending_clips = 0
            self.last = "B"
        if self.armed[i]:
            self.armed[i] = False
            if p.grad is not None:
                self.stale_sq += p.grad.detach().float().square().sum()
            self.fresh_sq += grad.detach().float().square().sum()

    def on_clip(self) -> None:
        self.clips += 1
        if self.last in ("B", "C") and self.backward_events:
            self.pending_clips += 1  # effective if a step follows before the next backward
        else:
            self.clips_ineffective += 1  # nothing computed since the last step: it clips stale or no gradients
        self.last = "C"

    def on_step(self) -> None:
        self.steps += 1
        grads = [p.grad for p in self.params if p.grad is not None]
        sq = torch.stack([g.detach().float().square().sum() for g in grads]).sum() if grads else \
            torch.zeros((), device=self.stale_sq.device)
        self.step_sq += sq
        self.empty_steps += (sq == 0).float()
        self.pending_clips = 0
        self.last = "S"

    def after_step(self) -> None:
        self.armed = [True] * len(self.params)


@contextmanager
def _wrapped_clipping(watch: _Watch, target_path: str) -> Iterator[None]:
    """Wrap the clipping functions in torch.nn.utils and wherever the target file bound them by name."""
    originals = {name: getattr(nn_utils, name) for name in CLIP_NAMES if hasattr(nn_utils, name)}
    by_id = {id(fn): name for name, fn in originals.items()}
    patched: list[tuple[Any, str, Any]] = []

    def wrap(fn: Any) -> Any:
        def clip(*args: Any, **kwargs: Any) -> Any:
            watch.on_clip()
            return fn(*args, **kwargs)
        return clip

    homes = [nn_utils, clip_grad_mod] + [m for m in list(sys.modules.values())
                                         if getattr(m, "__file__", None) == target_path]
    try:
        for home in homes:
            for attr, val in list(vars(home).items()):
                if id(val) in by_id:
                    patched.append((home, attr, val))
                    setattr(home, attr, wrap(val))
        yield
    finally:
        for home, attr, val in reversed(patched):
            setattr(home, attr, val)


def run(ctx) -> None:
    user_step = ctx.setup.train_step
    # Recorded either way, so a rule can rule out train_step causes for targets that have none.
    ctx.metrics.scalars["step.defined"] = user_step is not None
    if user_step is None:
        raise SkipProbe("the target defines no train_step (doctor's own step is used)")
    model = ctx.fresh_model()
    model.zero_grad(set_to_none=True)
    opt = ctx.make_optimizer(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SkipProbe("the model has no trainable parameters")
    watch = _Watch(params, ctx.device)
    before = [p.detach().clone() for p in params]
    handles: list[Any] = []
    for i, p in enumerate(params):
        handles.append(p.register_hook(lambda g, i=i: watch.on_grad(i, g)))
    handles.append(opt.register_step_pre_hook(lambda *_: watch.on_step()))
    handles.append(opt.register_step_post_hook(lambda *_: watch.after_step()))
    calls = ctx.budget.step_calls
    batches = cycle(ctx.train_batches)
    try:
        with _wrapped_clipping(watch, ctx.setup.path):
            for _ in range(calls):
                watch.last = ""  # each call starts afresh: a clip before its backward clips nothing new
                call_injected(user_step, {"model": model, "batch": next(batches), "optimizer": opt,
                                          "loss_fn": ctx.loss_fn, "device": ctx.device}, what="train_step")
                watch.clips_ineffective += watch.pending_clips  # a clip with no step after it in the call
                watch.pending_clips = 0
    finally:
        for h in handles:
            h.remove()
    moved = torch.stack([torch.ne(p.detach(), b).any() for p, b in zip(params, before)]).any()
    stale, fresh, step_sq, empty, moved_v = torch.stack(
        [watch.stale_sq, watch.fresh_sq, watch.step_sq, watch.empty_steps, moved.float()]).tolist()
    model.zero_grad(set_to_none=True)
    sc = ctx.metrics.scalars
    sc["step.calls"] = calls
    sc["step.optimizer_steps"] = watch.steps
    sc["step.backward_passes"] = watch.backward_events
    sc["step.weights_moved"] = bool(moved_v)
    sc["step.empty_steps"] = int(empty)
    sc["step.clip_calls"] = watch.clips
    sc["step.clip_ineffective"] = watch.clips_ineffective
    if fresh > 0:
        # Size of the gradient carried over from before the last step, against the new gradient.
        sc["step.stale_grad_ratio"] = (stale / fresh) ** 0.5


PROBE = Probe(
    name="custom_step",
    doc="Calls the target's train_step a few times and checks that gradients are zeroed between optimizer "
        "steps, that clipping runs between backward and step, and that the weights change.",
    run=run, needs_data=False, order=45, cost="3 / 5 / 8 calls of train_step (quick / standard / deep)")
