"""Batch independence: in eval mode, one sample's output must not depend on the other samples' inputs.

The gradient of sample i's output (projected on a fixed random direction) with respect to the whole
input batch must be zero outside row i. A `view` where a `permute` was meant, a softmax or a
normalisation over the batch dimension, or a broadcast across the batch all leak gradient into other
rows. Eval mode, because BatchNorm in train mode mixes the batch by design. Integer inputs (token
ids) have no gradient: the outputs of the embedding layers stand in for them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from doctor.collect.context import model_output
from doctor.collect.probes import Probe, SkipProbe

SAMPLES = 4  # a few rows are enough: any mixing shows between any two of them
PROBED_ROWS = (0, -1)  # the first and the last row's outputs are differentiated


def run(ctx) -> None:
    try:
        _measure(ctx, at=None)
    except _ZeroGradient:
        # The output layer starts at zero (torchvision's ViT does this): the output is constant at the initial
        # weights, so measure on what that layer reads instead, which still mixes samples if anything does.
        at = ctx.metrics.scalars.get("static.output_layer")
        if not isinstance(at, str) or not at:
            raise SkipProbe(_NO_GRADIENT) from None
        try:
            _measure(ctx, at=at)
        except _ZeroGradient:
            raise SkipProbe(_NO_GRADIENT) from None


_NO_GRADIENT = ("the outputs have no gradient with respect to the inputs at the initial weights (the model ignores "
                "them, or its layers start at zero)")


class _ZeroGradient(Exception):
    pass


def _measure(ctx, at: str | None) -> None:
    """Measure batch dependence of the model's output, or of the input of the layer named `at`."""
    model = ctx.fresh_model()
    x, _ = ctx.train_batches[0]
    n = min(SAMPLES, x.shape[0])
    if n < 2:
        raise SkipProbe("the batch has a single sample; batch independence needs two or more")
    x = x[:n].detach().clone()
    model.eval()
    captured: list[torch.Tensor] = []
    handles: list[Any] = []
    try:
        if x.is_floating_point():
            x.requires_grad_(True)
            inputs = [x]
            out = _output(model, x, at)
        else:
            def keep(_m: nn.Module, _inp: Any, o: Any) -> None:
                if isinstance(o, torch.Tensor) and o.is_floating_point() and o.requires_grad and o.shape[:1] == (n,):
                    captured.append(o)
            for mod in model.modules():
                if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
                    handles.append(mod.register_forward_hook(keep))
            out = _output(model, x, at)
            inputs = captured
            if not inputs:
                raise SkipProbe("the inputs are not floating point and no embedding layer produced a per-sample "
                                "output to differentiate")
        if out.dim() == 0 or out.shape[0] != n:
            raise SkipProbe(f"the model's output has shape {tuple(out.shape)}, not one row per input sample")
        if not out.requires_grad:
            raise SkipProbe("the model's output does not depend on its input through autograd")
        g = torch.Generator(device="cpu").manual_seed(ctx.seed)
        direction = torch.randn(tuple(out.shape[1:]), generator=g).to(out.device, out.dtype)
        own, other = [], []
        for row in PROBED_ROWS:
            r = row % n
            grads = torch.autograd.grad((out[r] * direction).sum(), inputs, retain_graph=True, allow_unused=True)
            own_sq = torch.zeros((), device=out.device)
            other_sq = torch.zeros((), device=out.device)
            for gr in grads:
                if gr is None:
                    continue
                sq = gr.detach().float().square().reshape(n, -1).sum(dim=1)
                own_sq = own_sq + sq[r]
                other_sq = other_sq + sq.sum() - sq[r]
            own.append(own_sq)
            other.append(other_sq)
        own_t, other_t = torch.stack(own).sqrt(), torch.stack(other).sqrt()
        vals = torch.stack([own_t.max(), other_t.max(), (other_t / (own_t + other_t)).nan_to_num(0.0).max()]).tolist()
    finally:
        for h in handles:
            h.remove()
        model.train()
        model.zero_grad(set_to_none=True)
    own_max, other_max, share = vals
    sc = ctx.metrics.scalars
    sc["batch.samples"] = n
    sc["batch.through_embedding"] = not x.is_floating_point()
    if own_max == 0 and other_max == 0:
        raise _ZeroGradient()
    # Share of the gradient of a row's output that lands on the other rows: 0 for independent samples.
    sc["batch.dependence"] = share


def _output(model: nn.Module, x: torch.Tensor, at: str | None) -> torch.Tensor:
    """The model's output, or the (first) input of the submodule `at` during the forward pass."""
    if at is None:
        return model_output(model, x)
    seen: list[torch.Tensor] = []
    layer = dict(model.named_modules()).get(at)
    if layer is None:
        raise _ZeroGradient()
    handle = layer.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0]) if args and isinstance(args[0], torch.Tensor) else None)
    try:
        model_output(model, x)
    finally:
        handle.remove()
    if not seen:
        raise _ZeroGradient()
    return seen[0].reshape(seen[0].shape[0], -1) if seen[0].dim() > 1 else seen[0]


PROBE = Probe(
    name="batch_independence",
    doc="In eval mode, differentiates the first and the last sample's output with respect to a batch of 4 "
        "inputs (or their embeddings) and measures the share of the gradient that lands on the other samples.",
    run=run, needs_data=False, order=25, cost="one forward and two backward passes on 4 samples")
