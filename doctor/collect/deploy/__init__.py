"""What the deploy probes share: the model they judge, eval mode put back as found, quiet exports, output errors."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from doctor.collect.context import model_output

TRAINED = "trained_state"  # ctx.cache key: the training burst's final weights (training_burst.py keeps them)
TRAINED_FINITE = "trained_state_finite"  # ctx.cache key: whether they are all finite (read once)
BUDGETS = ("deep",)  # the budgets the deploy family runs at without --deploy


def will_run(ctx) -> bool:
    """Whether the deploy probes run in this check: with --deploy, or at one of their budgets."""
    return bool(ctx.options.get("deploy")) or ctx.budget.name in BUDGETS


def rows_of(x: Any, n: int) -> Any:
    """The first n rows of every tensor in an input (repeated when it has fewer)."""
    from torch.utils import _pytree as pytree  # noqa: PLC0415

    def take(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or not t.dim():
            return t
        reps = -(-n // t.shape[0])
        return (t.repeat(reps, *([1] * (t.dim() - 1))) if reps > 1 else t)[:n]
    return pytree.tree_map(take, x)


def batch_rows(x: Any) -> int:
    """Rows of an input's first tensor."""
    from torch.utils import _pytree as pytree  # noqa: PLC0415

    return int(next(t for t in pytree.tree_leaves(x) if isinstance(t, torch.Tensor)).shape[0])


def deploy_model(ctx) -> tuple[nn.Module, str]:
    """The model the deploy probes judge, and which weights it holds ("trained" or "initial").

    Export, quantisation drift and eval health mean most on a trained model (at initialisation every int8
    accuracy is chance), so the weights the training burst ended at are used when it kept them and they are
    finite; otherwise the initial weights, and the report says which.
    """
    model = ctx.fresh_model()
    state = ctx.cache.get(TRAINED)
    if state is None:
        return model, "initial"
    ok = ctx.cache.get(TRAINED_FINITE)
    if ok is None:
        floats = [v for v in state.values() if v.is_floating_point()]
        ok = bool(torch.stack([torch.isfinite(v).all() for v in floats]).all()) if floats else True  # one read
        ctx.cache[TRAINED_FINITE] = ok
    if not ok:
        return model, "initial"
    model.load_state_dict(state)
    return model, "trained"


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode; every module's own train/eval flag put back after, as it was found."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def quiet() -> Iterator[None]:
    """Hold back what torch prints on the process's stdout and stderr (graphs and guard warnings of a failed
    export), so the progress log stays readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, null):
                os.close(fd)


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """RMS of (out - ref) over the RMS of ref, on the device (a 0-d tensor); 0 for two zero outputs."""
    out, ref = out.detach().float(), ref.detach().float()
    scale = ref.pow(2).mean().sqrt()
    diff = (out - ref).pow(2).mean().sqrt()
    return torch.where(scale > 0, diff / scale.clamp_min(1e-30), diff)


def first_tensor(out: Any) -> torch.Tensor:
    """A module's output as one tensor: an LSTM's (output, state) gives its output."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out


@torch.no_grad()
def outputs(model: nn.Module, batches: list) -> list[torch.Tensor]:
    """The model's output tensor for each batch's inputs."""
    return [model_output(model, x).detach() for x, _ in batches]


def score(ctx, outs: list[torch.Tensor], batches: list) -> torch.Tensor:
    """[mean loss, accuracy (NaN unless classification)] over the batches, as one device tensor."""
    loss = torch.zeros((), device=outs[0].device)
    correct = torch.zeros((), device=outs[0].device)
    count = 0
    for out, (_, y) in zip(outs, batches):
        y = y.to(out.device)
        loss = loss + ctx.compute_loss(out.float(), y).float()
        if ctx.task == "classification" and out.dim() == 2 and y.dim() == 1:
            correct = correct + (out.argmax(-1) == y).sum()
            count += y.numel()
    acc = correct / count if count else torch.full((), float("nan"), device=loss.device)
    return torch.stack([loss / max(len(outs), 1), acc])


def info(ctx):
    """The report's deploy figures (Metrics.setup.deploy), created by the first deploy probe that runs."""
    from doctor.metrics import DeployInfo  # noqa: PLC0415

    if ctx.metrics.setup.deploy is None:
        ctx.metrics.setup.deploy = DeployInfo(device=str(ctx.device))
    return ctx.metrics.setup.deploy
