"""The instrumented training burst: the step loop shared by the probes and the overhead benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from doctor.collect.instrument import ActStats, GradStats

Batch = tuple[torch.Tensor, torch.Tensor]
StepFn = Callable[[nn.Module, Batch, torch.optim.Optimizer], torch.Tensor]


@dataclass
class BurstResult:
    steps_run: int = 0
    losses: list[float] = field(default_factory=list)
    stopped_nonfinite: bool = False
    evals: list[tuple[int, list[float]]] = field(default_factory=list)  # (step, values) per evaluation


def builtin_step(forward_loss: Callable[[nn.Module, Batch], torch.Tensor],
                 after_backward: Optional[Callable[[], None]] = None) -> StepFn:
    """zero_grad, forward, loss, backward, (instrument), optimizer.step."""
    def step(model: nn.Module, batch: Batch, opt: torch.optim.Optimizer) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = forward_loss(model, batch)
        loss.backward()
        if after_backward is not None:
            after_backward()
        opt.step()
        return loss
    return step


def run_burst(
    model: nn.Module,
    batches: Iterator[Batch],
    steps: int,
    step_fn: StepFn,
    optimizer: torch.optim.Optimizer,
    *,
    grads: Optional[GradStats] = None,
    grads_in_step: bool = False,
    acts: Optional[ActStats] = None,
    act_from_step: int = 0,
    evaluate: Optional[Callable[[], torch.Tensor]] = None,
    eval_every: int = 0,
    checkpoint_every: int = 0,
    on_checkpoint: Optional[Callable[[BurstResult], None]] = None,
) -> BurstResult:
    """Run `steps` training steps. Losses and eval values stay on the device; the host looks only
    every `checkpoint_every` steps (one sync), to stop on a non-finite loss and save progress."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    loss_buf = torch.full((steps,), float("nan"), device=device)
    n_evals = steps // eval_every if eval_every else 0
    eval_buf: Optional[torch.Tensor] = None
    eval_steps: list[int] = []
    result = BurstResult()
    checked = 0

    def read_back(upto: int) -> None:
        result.steps_run = upto
        result.losses = loss_buf[:upto].tolist()
        if eval_buf is not None:
            vals = eval_buf[: len(eval_steps)].tolist()
            result.evals = list(zip(eval_steps, vals))

    model.train()
    for step in range(steps):
        if acts is not None:
            acts.active = step >= act_from_step
        batch = next(batches)
        loss = step_fn(model, batch, optimizer)
        if grads is not None and not grads_in_step:
            grads.record(step)
        if isinstance(loss, torch.Tensor):
            loss_buf[step] = loss.detach().float()
        else:  # a custom train_step may return a float
            loss_buf[step] = float(loss)
        if evaluate is not None and eval_every and (step + 1) % eval_every == 0:
            if acts is not None:
                acts.active = False  # evaluation passes are not training activations
            model.eval()
            with torch.no_grad():
                vals = evaluate()
            model.train()
            if eval_buf is None:
                eval_buf = torch.full((max(n_evals, 1), vals.numel()), float("nan"), device=device)
            eval_buf[len(eval_steps)] = vals
            eval_steps.append(step + 1)
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            # The only host sync in the loop: is everything so far finite? Then save progress.
            finite = bool(torch.isfinite(loss_buf[checked: step + 1]).all())
            checked = step + 1
            read_back(step + 1)
            if on_checkpoint is not None:
                on_checkpoint(result)
            if not finite:
                result.stopped_nonfinite = True
                break
    else:
        read_back(steps)
    if acts is not None:
        acts.active = False
    return result
