"""Quantisation and bf16 drift: a converted copy of the model against fp32, overall and layer by layer."""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.utils import _pytree as pytree

from doctor.collect.context import model_output
from doctor.collect.deploy import first_tensor, rel_error

INT8_TYPES = (nn.Linear, nn.LSTM)  # what dynamic int8 quantisation replaces
TOP = 3  # layers named in a finding


def cast_input(x: Any, dtype: torch.dtype, device: Optional[torch.device] = None) -> Any:
    """Floating tensors of an input cast to dtype (and moved); integer ones (token ids, masks) only moved."""
    def one(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        t = t.to(device) if device is not None else t
        return t.to(dtype) if t.is_floating_point() else t
    return pytree.tree_map(one, x)


def int8_copy(model: nn.Module, fused_safe: bool = False) -> tuple[nn.Module, nn.Module, list[str]]:
    """(fp32 copy on the CPU, its dynamic-int8 copy, names of the layers replaced); int8 kernels are CPU-only.

    fused_safe leaves out the Linear layers inside nn.Transformer*Layer modules, whose eval-mode fast path reads
    their weights as tensors (a quantised Linear's weight is a method), as a second try when the first raised."""
    fp32 = copy.deepcopy(model).cpu().eval()
    skip = {f"{n}.{c}" if n else c for n, m in fp32.named_modules() if type(m).__name__.startswith("Transformer")
            and type(m).__name__.endswith("Layer") for c, _ in m.named_modules() if c} if fused_safe else set()
    names = [n for n, m in fp32.named_modules() if isinstance(m, INT8_TYPES) and n not in skip and n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its deprecation on every call
        spec = set(names) if fused_safe else set(INT8_TYPES)
        q = torch.ao.quantization.quantize_dynamic(fp32, spec, dtype=torch.qint8, inplace=False)
    return fp32, q, names


def bf16_copy(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """(bf16 copy on the model's device, names of the layers with parameters of their own)."""
    low = copy.deepcopy(model).to(torch.bfloat16).eval()
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return low, names


def finite(v: float) -> float:
    return v if math.isfinite(v) else math.inf  # a NaN error (bf16 overflowed) is the largest error there is


@torch.no_grad()
def layer_errors(fp32: nn.Module, low: nn.Module, names: list[str], x: Any, cast: Callable[[Any], Any]
                 ) -> dict[str, torch.Tensor]:
    """Each named layer's own error: its converted twin run on the fp32 layer's input (cast), against the fp32
    layer's output, so an error that starts upstream is not blamed on the layers it passes through.

    Measured inside the fp32 layer's forward hook, before an in-place activation downstream (ReLU(inplace=True))
    overwrites its output, and without keeping any activation."""
    fmods, lmods = dict(fp32.named_modules()), dict(low.named_modules())
    errs: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str):
        def fn(_m, args, kwargs, out):
            if name in errs:  # a module used twice is measured at its first call
                return
            try:
                got = lmods[name](*cast(args), **cast(kwargs))
            except Exception:  # noqa: BLE001 - a layer that cannot run alone on its input is left out
                return
            ref, low_out = first_tensor(out), first_tensor(got)
            if isinstance(ref, torch.Tensor) and isinstance(low_out, torch.Tensor) and ref.shape == low_out.shape:
                errs[name] = rel_error(low_out.to(ref.device), ref)
        return fn

    try:
        for n in names:
            if n in lmods:
                handles.append(fmods[n].register_forward_hook(hook(n), with_kwargs=True))
        model_output(fp32, x)
    finally:
        for h in handles:
            h.remove()
    return {n: errs[n] for n in names if n in errs}  # forward order of the names


def top_layers(errs: dict[str, float], types: dict[str, str]) -> str:
    """'fc2 (Linear, 77.1%), fc1 (Linear, 1.3%)': the worst layers first, with their own errors."""
    worst = sorted(errs.items(), key=lambda kv: -kv[1])[:TOP]
    return ", ".join(f"{n} ({types[n] + ', ' if types.get(n) else ''}{_pct(e)})" for n, e in worst)


def _pct(e: float) -> str:
    if not math.isfinite(e):
        return "non-finite"
    return f"{e:.3g}x its output" if e >= 10 else f"{e:.1%}" if e >= 1e-3 else f"{e:.1e}"
