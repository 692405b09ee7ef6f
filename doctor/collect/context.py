"""Prepare what every probe shares: the loaded setup, cached batches, the loss, the pristine weights."""

from __future__ import annotations

import copy
import gc
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from doctor.collect import data as datamod
from doctor.collect.budget import Budget
from doctor.collect.burst import StepFn, builtin_step
from doctor.collect.crash import Call, forward_site
from doctor.collect.instrument import forward_order
from doctor.collect.target import TargetError, TrainingSetup
from doctor.metrics import Metrics


class ForwardError(Exception):
    """The user's forward pass, loss or backward raised; carries what was being done, and with what."""

    def __init__(self, what: str, cause: BaseException, call: Optional[Call] = None):
        super().__init__(what)
        self.what = what
        self.cause = cause
        self.call = call


OUTPUT_KEYS = ("logits", "out", "output")  # the dict entries read as the model's output, in this order


def pick_output(out: Any) -> tuple[torch.Tensor, str]:
    """The tensor doctor treats as the model's output, and where it came from ("" for a plain tensor).

    A dict (or HuggingFace-style ModelOutput) gives its `logits`/`out`/`output` entry, else its first
    tensor; a tuple or list gives its first tensor (the logits, by convention)."""
    if isinstance(out, torch.Tensor):
        return out, ""
    if isinstance(out, Mapping):
        keys = {str(k).lower(): k for k in out}
        for k in OUTPUT_KEYS:
            if k in keys and isinstance(out[keys[k]], torch.Tensor):
                return out[keys[k]], f"the '{keys[k]}' entry of the {type(out).__name__} it returns"
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                return v, f"the '{k}' entry (its first tensor) of the {type(out).__name__} it returns"
        raise TargetError(f"the model returned a {type(out).__name__} with keys "
                          f"{', '.join(map(str, out)) or '(none)'} and no tensor among them", kind="forward",
                          hint="Return the output tensor, or a dict with a 'logits' tensor.")
    if isinstance(out, (tuple, list)):
        for i, item in enumerate(out):
            if isinstance(item, torch.Tensor):
                return item, f"element {i} of the {len(out)}-element {type(out).__name__} it returns"
    raise TargetError(f"the model returned a {type(out).__name__}; doctor needs a tensor (or a tuple whose first "
                      "element is the output tensor, or a dict with a 'logits' tensor)", kind="forward")


def model_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the model; a tuple/list/dict output is reduced to one tensor as `pick_output` says."""
    return pick_output(model(x))[0]


def is_oom(exc: BaseException) -> bool:
    """Out of device memory (CUDA, MPS): worth a retry with smaller batches."""
    return isinstance(exc, torch.OutOfMemoryError)


def halve_batches(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first half of each batch's rows (at least one)."""
    return [(x[: max(1, x.shape[0] // 2)], y[: max(1, y.shape[0] // 2)] if y.dim() else y) for x, y in batches]


def release_memory() -> None:
    """Give cached device memory back after an out-of-memory error, so a smaller retry can succeed."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def after_oom(train: list[datamod.Batch], val: list[datamod.Batch]
              ) -> Optional[tuple[list[datamod.Batch], list[datamod.Batch]]]:
    """After an out-of-memory error: every batch halved and cached memory given back; None at one sample already."""
    if int(train[0][0].shape[0]) <= 1:
        return None
    halved = halve_batches(train), halve_batches(val)
    release_memory()
    return halved


class _BinaryTargetAdapter(nn.Module):
    """The default BCE loss for binary tasks, tolerant of (N, 1) outputs against (N,) integer targets."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.BCEWithLogitsLoss()

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.shape != out.shape and y.numel() == out.numel():
            y = y.reshape(out.shape)
        return self.inner(out, y.to(out.dtype))


@dataclass
class Context:
    """Everything a probe needs; probes take a fresh copy of the initial weights each."""

    setup: TrainingSetup
    metrics: Metrics
    budget: Budget
    device: torch.device
    seed: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    task: str
    num_outputs: int
    train_batches: list[datamod.Batch]
    val_batches: list[datamod.Batch]
    synthetic: bool  # no real data: batches were synthesised
    val_held_out: bool  # validation batches were held out of the training data
    layer_order: list[str]
    train_loader: Any = None
    val_loader: Any = None  # the target's own validation data, re-iterable (None when held out or absent)
    broken: Optional[ForwardError] = None  # the forward or loss raised: only data probes can run
    init_state: dict[str, torch.Tensor] = field(default_factory=dict)
    checkpoint: Callable[[], None] = lambda: None
    cache: dict[str, Any] = field(default_factory=dict)  # shared between probes (e.g. one pass over the data)
    lr_raised: float = 1.0  # the optimizer's rates were raised this many times, to its scheduler's peak
    forward_s: float = 0.0  # seconds of the first forward pass (hooks and warm-up included: an upper bound)
    step_s: float = 0.0  # seconds of the first forward and backward pass, or 3 forwards when it was not run
    full_budget: Optional[Budget] = None  # the budget before it was cut to fit its time (pace.fit), or None
    options: dict[str, Any] = field(default_factory=dict)  # the run's switches: deploy, nproc, target, factory

    def fresh_model(self) -> nn.Module:
        """The model at its initial weights, in train mode, with the probe's RNG seeded."""
        self.setup.model.load_state_dict(self.init_state)
        self.setup.model.train()
        torch.manual_seed(self.seed)
        return self.setup.model

    def halve_batch_size(self, where: str) -> bool:
        """After an out-of-memory error: halve every cached batch and say so; False at one sample already."""
        rows = int(self.train_batches[0][0].shape[0])
        halved = after_oom(self.train_batches, self.val_batches)
        if halved is None:
            return False
        self.train_batches, self.val_batches = halved
        new = int(self.train_batches[0][0].shape[0])
        self.metrics.setup.notes.append(
            f"Out of device memory in {where} at batch size {rows}: it and every later probe ran at batch size "
            f"{new}. The measurements hold for that batch size; lower batch_size in the target to match.")
        return True

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.setup.make_optimizer is None:
            return torch.optim.Adam(model.parameters(), lr=1e-3)
        opt = self.setup.make_optimizer(model)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TargetError(f"the optimizer factory returned a {type(opt).__name__}, not a torch.optim.Optimizer",
                              kind="load")
        self.lr_raised = at_scheduled_peak(opt)
        return opt

    def compute_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(out, y)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                     else f"a {type(loss).__name__}")
            raise TargetError(f"the loss ({_loss_name(self.loss_fn)}) returned {shape}, not a scalar tensor",
                              kind="forward",
                              hint="Reduce it (e.g. `.mean()`), or use reduction='mean'.")
        return loss

    def batch_loss(self, model: nn.Module, batch: datamod.Batch) -> torch.Tensor:
        """The loss of `model` on one (inputs, targets) batch, its output picked as everywhere else."""
        return self.compute_loss(model_output(model, batch[0]), batch[1])

    def call(self, where: str) -> Call:
        """What a probe was running, for the crash facts if the user's code raises in it."""
        x, y = self.train_batches[0]
        return Call(stage="train_step" if self.setup.train_step is not None else "", where=where, inputs=x,
                    targets=y, loss_name=_loss_name(self.loss_fn), model=self.setup.model)

    def step_fn(self, after_backward: Optional[Callable[[], None]] = None) -> StepFn:
        """doctor's own training step on this target's loss: what every probe that trains runs."""
        return builtin_step(self.batch_loss, after_backward)


def at_scheduled_peak(opt: torch.optim.Optimizer) -> float:
    """Set each group's rate to the peak its scheduler will reach, and return how many times higher that is.

    A warm-up scheduler (OneCycleLR, LinearLR from a low start factor) leaves the rate at step 0 far below
    the one training mostly runs at, and doctor's step does not step the user's scheduler: a burst or a
    batch memorised at the step-0 rate would test the warm-up, not the model. A scheduler records its
    base rate as `initial_lr` in each group (OneCycleLR also its `max_lr`); decaying ones start at it,
    so nothing changes.
    """
    raised = 1.0
    for g in opt.param_groups:
        lr = g.get("lr")
        peak = max((v for v in (g.get("initial_lr"), g.get("max_lr")) if isinstance(v, (int, float))), default=None)
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 and peak is not None and peak > lr:
            raised = max(raised, peak / lr)
            g["lr"] = peak
    return raised


def _loss_name(fn: Any) -> str:
    if isinstance(fn, _BinaryTargetAdapter):
        return "BCEWithLogitsLoss"  # doctor's default for binary tasks; the adapter is an implementation detail
    return type(fn).__name__ if isinstance(fn, nn.Module) else getattr(fn, "__name__", type(fn).__name__)


def prepare(setup: TrainingSetup, metrics: Metrics, budget: Budget, device: torch.device, seed: int) -> Context:
    """Resolve data, run one checked forward pass and loss, and snapshot the initial weights."""
    model = setup.model.to(device)
    inject = {"batch_size": setup.batch_size, "device": device, "seed": seed}
    needed = budget.train_steps + budget.eval_batches
    train_loader = val_loader = None
    val_held_out = dicts = False
    notes: list[str] = []  # setup notes for the report, in the order they arise
    if setup.train_data is not None:
        train_loader = datamod.to_loader(setup.train_data, name=setup.names["train_data"], batch_size=setup.batch_size,
                                         seed=seed, shuffle=True, inject=inject)
        taken = datamod.take_batches(train_loader, needed, name=setup.names["train_data"], device=device)
        train_batches, dicts = taken.batches, taken.dicts
        notes += [taken.layout] if taken.layout else []
        if not train_batches:
            raise TargetError(f"{setup.names['train_data']} yielded no batches", kind="load")
        synthetic = False
    else:
        x = datamod.synthesize_input(model, setup.batch_size, setup.example_input, device=device, seed=seed)
        train_batches = [(x, torch.empty(0, device=device))]  # targets are made once the output shape is known
        synthetic = True

    val_batches: list[datamod.Batch] = []
    if setup.val_data is not None:
        val_loader = datamod.to_loader(setup.val_data, name=setup.names["val_data"], batch_size=setup.batch_size,
                                       seed=seed, shuffle=False, inject=inject)
        taken = datamod.take_batches(val_loader, budget.eval_batches, name=setup.names["val_data"], device=device)
        val_batches, dicts = taken.batches, dicts or taken.dicts
        notes += [taken.layout] if taken.layout else []
    elif not synthetic and len(train_batches) > budget.eval_batches + 1:
        # No validation data: hold out the last few training batches, never trained on.
        k = min(budget.eval_batches, max(1, len(train_batches) // 4))
        val_batches, train_batches = train_batches[-k:], train_batches[:-k]
        val_held_out = True

    torch.manual_seed(seed)
    model.train()
    holder: dict[str, Any] = {}

    bn_one_value: list[str] = []  # BatchNorm layers that see one value per channel per sample in this forward

    def run_forward() -> None:
        with _watch_batchnorm(model, bn_one_value):
            holder["raw"] = model(holder["x"])

    broken: Optional[ForwardError] = None
    out: Optional[torch.Tensor] = None
    picked = ""
    order: list[str] = []
    first_rows = int(train_batches[0][0].shape[0])
    forward_s = 0.0
    while True:
        x0, y0 = train_batches[0]
        holder["x"] = x0
        try:
            started = device_clock(device)
            order = forward_order(model, run_forward)
            forward_s = device_clock(device) - started
            out, picked = pick_output(holder.pop("raw"))
            break
        except TargetError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's forward may raise anything
            holder.pop("raw", None)  # before halving, so its memory can be given back
            halved = after_oom(train_batches, val_batches) if is_oom(exc) else None
            if halved is not None:  # out of device memory: retry at half the batch size (the report says so)
                train_batches, val_batches = halved
                continue
            if synthetic:
                origin = "example_input" if setup.example_input is not None else \
                    f"the first layer ({type(datamod.first_layer(model)).__name__}); define example_input if it is wrong"
                what = (f"the model's forward pass on a synthesised input of shape {tuple(x0.shape)} (from {origin}) "
                        "raised")
            else:
                what = f"the model's forward pass on a batch of shape {tuple(x0.shape)} raised"
            broken = ForwardError(what, exc, Call(stage="forward", where="the first forward pass", inputs=x0,
                                                  targets=train_batches[0][1], model=model))
            break
    holder.clear()
    if x0.shape[0] < first_rows:
        notes.append(f"Out of device memory in the first forward pass at batch size {first_rows}: doctor halved "
                     f"the batches until it fit and ran every probe at batch size {x0.shape[0]}. The measurements "
                     "hold for that batch size; lower batch_size in the target to match.")
    if picked:
        notes.append(f"The model does not return a tensor: doctor reads {picked} as the model's output.")
    if setup.train_step is not None and dicts:
        notes.append("The custom train_step receives each batch as an (inputs, targets) pair, not as the dict "
                     "the loader yields.")
    if out is not None and out.dim() == 0:
        raise TargetError("the model returned a scalar; doctor needs one output row per sample", kind="forward")
    shaped = out if out is not None or broken is None else _eval_mode_output(model, x0)
    num_outputs = (int(shaped.shape[-1]) if shaped.dim() > 1 else 1) if shaped is not None else 0

    if synthetic:
        if out is None:
            assert broken is not None
            raise broken
        task = setup.task or datamod.infer_task(setup.loss_fn, None, num_outputs)
        if setup.task is None and setup.loss_fn is None and num_outputs > 1:
            task = "classification"
        y = _synthetic_targets(out, task, num_outputs, seed)
        train_batches = [(x0, y)]
    else:
        task = setup.task or datamod.infer_task(setup.loss_fn, y0, num_outputs or None)

    loss_fn = setup.loss_fn
    if loss_fn is None:
        loss_fn = _BinaryTargetAdapter() if task == "binary" else datamod.default_loss(task)
        setup.defaults_used.append(f"loss: {_loss_name(loss_fn)} (inferred from the task '{task}')")
    if setup.make_optimizer is None:
        setup.defaults_used.append("optimizer: Adam(lr=1e-3), doctor's default (define optimizer(model) to use yours)")

    ctx = Context(setup=setup, metrics=metrics, budget=budget, device=device, seed=seed, loss_fn=loss_fn, task=task,
                  num_outputs=num_outputs, train_batches=train_batches, val_batches=val_batches, synthetic=synthetic,
                  val_held_out=val_held_out, layer_order=order, train_loader=train_loader, val_loader=val_loader)
    if out is not None:
        y0 = train_batches[0][1]
        call = Call(stage="loss", where="the loss on the first batch", inputs=x0, targets=y0, output=out,
                    loss_name=_loss_name(loss_fn), model=model)
        loss = None
        try:
            loss = ctx.compute_loss(out, y0)
        except TargetError as exc:  # a non-scalar loss: as broken as a raising one, the data probes still run
            broken = ForwardError(str(exc), exc)
        except Exception as exc:  # noqa: BLE001
            broken = ForwardError(
                f"the loss ({_loss_name(loss_fn)}) on the model's output of shape {tuple(out.shape)} "
                f"and targets of shape {tuple(y0.shape)} raised", exc, call)
        del loss
    # Probes that run the model are skipped when it cannot run; the data probes still explain why.
    ctx.init_state = copy.deepcopy(model.state_dict())
    ctx.forward_s = forward_s if out is not None else 0.0
    ctx.step_s = 3 * ctx.forward_s  # forward and backward, until the backward pass below is timed
    if broken is None and out is not None and setup.train_step is None:
        started = device_clock(device)
        broken = _backward_check(ctx, model, call)
        ctx.step_s = max(device_clock(device) - started, ctx.forward_s)
    ctx.broken = broken

    opt = ctx.make_optimizer(model)
    lr = opt.param_groups[0].get("lr") if opt.param_groups else None
    s = metrics.setup
    s.target, s.model_class, s.task = setup.path, type(model).__name__, task
    s.loss, s.optimizer = _loss_name(loss_fn), type(opt).__name__
    s.batch_size, s.device = int(x0.shape[0]), str(device)
    s.defaults_used = list(setup.defaults_used)
    s.notes.extend(notes)
    if synthetic:
        s.notes.append(f"No training data in the target: inputs of shape {tuple(x0.shape)} were synthesised; "
                       "data probes are skipped.")
    if val_held_out:
        s.notes.append(f"No validation data in the target: {len(val_batches)} training batches were held out "
                       "for validation.")
    if ctx.lr_raised > 1:
        s.notes.append(f"The optimizer's scheduler starts at 1/{ctx.lr_raised:.3g} of its peak rate (a warm-up), and "
                       f"doctor's own steps do not step your scheduler: the probes train at the peak, {lr:.3g}.")
    last_rows = last_batch_rows(train_loader) if train_loader is not None else None
    if bn_one_value and not synthetic:
        # A one-sample batch would make those BatchNorm layers raise in every probe that trains; the rule
        # batchnorm-last-batch-of-one reports it, and the probes train on the batches that work.
        kept = [b for b in ctx.train_batches if int(b[0].shape[0]) > 1]
        if kept and len(kept) < len(ctx.train_batches):
            s.notes.append(f"{len(ctx.train_batches) - len(kept)} training batch(es) of one sample left out of the "
                           "probes: the model's BatchNorm layers cannot train on them.")
            ctx.train_batches = kept
    metrics.layer_types = {name: type(mod).__name__ for name, mod in model.named_modules() if name}
    metrics.scalars.update({
        "setup.has_train_data": not synthetic,
        "setup.has_val_data": setup.val_data is not None,
        "setup.is_classification": task == "classification",
        "setup.num_outputs": num_outputs if shaped is not None else None,  # unknown when the forward raised
        "setup.num_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "setup.lr": float(lr) if isinstance(lr, (int, float)) else None,
        "setup.lr_raised": round(ctx.lr_raised, 6) if ctx.lr_raised > 1 else None,
        # Optimizers that divide each step by a running gradient scale, so a step is about the rate itself
        "setup.adaptive_optimizer": any(c.__name__ in ADAPTIVE_OPTIMIZERS for c in type(opt).__mro__),
        "setup.task": task,
        "setup.count_loss": isinstance(loss_fn, nn.PoissonNLLLoss),
        "setup.last_batch_rows": last_rows[0] if last_rows else None,
        "setup.train_samples": last_rows[1] if last_rows else None,
        "setup.loader_batch_size": last_rows[2] if last_rows else None,
        "setup.bn_one_value_layers": len(dict.fromkeys(bn_one_value)) if out is not None else None,
        "setup.bn_one_value_at": bn_one_value[0] if bn_one_value else None,
    })
    return ctx


def device_clock(device: torch.device) -> float:
    """perf_counter after the device's queue is done (one sync), so the time is the work's.

    For timing set-up and inference calls; never inside a training step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _backward_check(ctx: Context, model: nn.Module, call: Call) -> Optional[ForwardError]:
    """One forward and backward pass with gradients on, the model put back as it was after.

    A graph that cannot be differentiated (everything detached, a tensor it needs overwritten in place, a target
    dtype the loss's gradient rejects) is found here, once, instead of failing every probe that trains. A custom
    train_step is left to the probes that call it.
    """
    torch.manual_seed(ctx.seed)
    try:
        ctx.batch_loss(model, ctx.train_batches[0]).backward()
        return None
    except Exception as exc:  # noqa: BLE001 - the user's backward may raise anything
        if is_oom(exc):
            return None  # the probes halve their batches on their own
        call.stage, call.where = "backward", "the backward pass of the first batch"
        model.load_state_dict(ctx.init_state)
        call.site = forward_site(lambda: ctx.batch_loss(model, ctx.train_batches[0]).backward(), ctx.setup.path)
        return ForwardError(f"loss.backward() on the first batch ({_loss_name(ctx.loss_fn)}) raised", exc, call)
    finally:
        for p in model.parameters():
            p.grad = None
        model.load_state_dict(ctx.init_state)  # BatchNorm statistics as the first pass left them


def _eval_mode_output(model: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The output of a forward pass that raised in train mode, run again in eval mode, or None.

    Only its shape is used (the number of outputs, and so the task): a BatchNorm that raised on a batch of one
    sample runs in eval mode, and knowing the output size keeps the data probes from judging labels blind.
    """
    try:
        model.eval()
        with torch.no_grad():
            out = pick_output(model(x))[0]
        return out if out.dim() else None
    except Exception:  # noqa: BLE001 - it raised in train mode already; that error is the one reported
        return None
    finally:
        model.train()


def last_batch_rows(loader: Any) -> Optional[tuple[int, int, int]]:
    """(rows in the last batch of an epoch, samples per epoch, batch size) of a DataLoader that batches by size.

    None when that is not known ahead: a custom batch sampler, an iterable dataset, or no DataLoader at all.
    """
    if not isinstance(loader, torch.utils.data.DataLoader) or not loader.batch_size:
        return None
    try:
        n = len(loader.sampler)  # what one epoch draws: the dataset, or a sampler's num_samples
    except TypeError:
        return None
    bs = int(loader.batch_size)
    if n <= 0:
        return None
    rest = n % bs
    return (bs if rest == 0 or loader.drop_last else rest), n, bs


class _watch_batchnorm:
    """Record the BatchNorm layers whose input has one value per channel per sample: a batch of one breaks them."""

    def __init__(self, model: nn.Module, found: list[str]) -> None:
        self.model, self.found, self.handles = model, found, []

    def __enter__(self) -> None:
        for name, mod in self.model.named_modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                def pre(_m: nn.Module, inp: Any, _name: str = name) -> None:
                    x = inp[0] if inp else None
                    if isinstance(x, torch.Tensor) and x.dim() >= 2 and x.numel() == x.shape[0] * x.shape[1]:
                        self.found.append(_name)
                self.handles.append(mod.register_forward_pre_hook(pre))

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _synthetic_targets(out: torch.Tensor, task: str, num_outputs: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = out.shape[0]
    if task == "classification":
        return torch.randint(0, max(num_outputs, 1), (n,), generator=g).to(out.device)
    if task in ("binary", "multilabel"):
        return torch.randint(0, 2, tuple(out.shape), generator=g).to(out.device, out.dtype)
    return torch.randn(tuple(out.shape), generator=g).to(out.device, out.dtype)


ADAPTIVE_OPTIMIZERS = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
                                 "SparseAdam", "Adafactor", "Lion", "LAMB", "Lamb", "Adan"})


def expected_init_loss(task: str, num_outputs: int) -> Optional[float]:
    """Loss of an uninformed model: ln C for C classes, ln 2 per binary label; None for regression."""
    if task == "classification" and num_outputs > 1:
        return math.log(num_outputs)
    if task in ("binary", "multilabel"):
        return math.log(2)
    return None
