"""Checks of the target's own train_step: are gradients zeroed, is clipping placed where it acts, does it step?

Calls `train_step(model, batch, optimizer, loss_fn)` a few times from the initial weights and
watches from the outside, without changing what the step does: a hook on every parameter sees the
gradient left over from earlier steps at the first backward after each optimizer step, the
optimizer's step hooks see the gradient it is given, and the clipping functions are wrapped for the
duration to see when they are called relative to backward and step.

Before each call, the gradient of doctor's own loss on the call's batch is taken (with
`autograd.grad`, so `.grad` is left alone): at each optimizer step the gradient the step is given
is compared with the mean of those reference gradients since the previous step. A step that
averages its micro-batches gets about 1x; gradient accumulation over k backward passes whose loss
is not divided by k gets kx, and stale gradients from a missing zero_grad get more with every step.
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
        self.seen: set[int] = set()  # parameters whose gradient the current backward pass has delivered
        self.paused = False  # doctor's own reference gradient is being taken: not the user's step
        self.ref: list[torch.Tensor] | None = None  # sum of reference gradients (x samples) since the last step
        self.ref_samples = 0
        self.ref_calls = 0
        self.backwards_since_step = 0
        self.per_step: list[tuple[int, int]] = []  # (backward passes, calls) that fed each step
        self.multiples: list[torch.Tensor] = []  # |gradient given to the step| / |mean reference gradient|

    def add_reference(self, grads: list[torch.Tensor], samples: int) -> None:
        if self.ref is None:
            self.ref = [g * samples for g in grads]
        else:
            self.ref = [r + g * samples for r, g in zip(self.ref, grads)]
        self.ref_samples += samples
        self.ref_calls += 1

    def on_grad(self, i: int, grad: torch.Tensor) -> None:
        if self.paused:
            return
        p = self.params[i]
        # A new backward pass: the first gradient after something else, or a parameter seen again
        # (backward passes one after another, as in gradient accumulation).
        if self.last != "B" or i in self.seen:
            self.seen = set()
            self.backward_events += 1
            self.backwards_since_step += 1
            # A clip followed by a backward (before any step) clipped gradients that are then overwritten.
            self.clips_ineffective += self.pending_clips
            self.pending_clips = 0
            self.last = "B"
        self.seen.add(i)
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
        if self.ref is not None and self.ref_samples and self.backwards_since_step:
            given = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
            ref_sq = torch.stack([(r / self.ref_samples).float().square().sum() for r in self.ref]).sum()
            given_sq = torch.stack([g.detach().float().square().sum() for g in given]).sum()
            self.multiples.append((given_sq / ref_sq.clamp_min(1e-30)).sqrt())
            self.per_step.append((self.backwards_since_step, self.ref_calls))
        self.ref, self.ref_samples, self.ref_calls, self.backwards_since_step = None, 0, 0, 0
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


def _reference_grad(ctx, model, params, batch) -> tuple[list[torch.Tensor], int] | None:
    """Gradient of doctor's loss on `batch` at the current weights, leaving .grad and buffers as they were."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], torch.Tensor)):
        return None
    buffers = [b.detach().clone() for b in model.buffers()]
    try:
        loss = ctx.batch_loss(model, batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    except Exception:  # the user's step may train on something doctor's loss cannot: no reference then
        return None
    finally:
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)], int(batch[0].shape[0])


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
    # A step that accumulates over more calls than the budget's would show no optimizer step: keep
    # calling, up to four times as many calls, until two steps have been seen.
    calls, most = ctx.budget.step_calls, 4 * ctx.budget.step_calls
    batches = cycle(ctx.train_batches)
    made = 0
    try:
        with _wrapped_clipping(watch, ctx.setup.path):
            while made < calls or (watch.steps < 2 and made < most):
                batch = next(batches)
                watch.paused = True
                try:
                    ref = _reference_grad(ctx, model, params, batch)
                finally:
                    watch.paused = False
                if ref is not None:
                    watch.add_reference(*ref)
                watch.last = ""  # each call starts afresh: a clip before its backward clips nothing new
                made += 1
                call_injected(user_step, {"model": model, "batch": batch, "optimizer": opt,
                                          "loss_fn": ctx.loss_fn, "device": ctx.device}, what="train_step")
                watch.clips_ineffective += watch.pending_clips  # a clip with no step after it in the call
                watch.pending_clips = 0
    finally:
        for h in handles:
            h.remove()
    moved = torch.stack([torch.ne(p.detach(), b).any() for p, b in zip(params, before)]).any()
    stale, fresh, step_sq, empty, moved_v, *multiples = torch.stack(
        [watch.stale_sq, watch.fresh_sq, watch.step_sq, watch.empty_steps, moved.float()]
        + watch.multiples).tolist()
    model.zero_grad(set_to_none=True)
    sc = ctx.metrics.scalars
    sc["step.calls"] = made
    if multiples:
        # The median step: the first of a run without zero_grad is still clean, later ones are not.
        sc["step.grad_multiple"] = _median(multiples)
        sc["step.backwards_per_step"] = _median([float(b) for b, _ in watch.per_step])
        sc["step.calls_per_step"] = _median([float(c) for _, c in watch.per_step])
    sc["step.optimizer_steps"] = watch.steps
    sc["step.backward_passes"] = watch.backward_events
    sc["step.weights_moved"] = bool(moved_v)
    sc["step.empty_steps"] = int(empty)
    sc["step.clip_calls"] = watch.clips
    sc["step.clip_ineffective"] = watch.clips_ineffective
    if fresh > 0:
        # Size of the gradient carried over from before the last step, against the new gradient.
        sc["step.stale_grad_ratio"] = (stale / fresh) ** 0.5


def _median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


PROBE = Probe(
    name="custom_step",
    doc="Calls the target's train_step a few times and checks that gradients are zeroed between optimizer "
        "steps, that clipping runs between backward and step, that the weights change, and how the gradient "
        "each optimizer step is given compares with the mean gradient of the batches it was computed on "
        "(gradient accumulation without dividing the loss).",
    run=run, needs_data=False, order=45, cost="3 / 5 / 8 calls of train_step (quick / standard / deep), up to 4x as many until two optimizer "
         "steps were seen; one reference forward and backward pass per call")
