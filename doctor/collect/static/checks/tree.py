"""Module-tree facts: layer counts, layers kept out of the tree, frozen parameters, initial weight scales."""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional

import torch
from torch import nn

from doctor.collect.instrument import RELU_FAMILY, SATURATING
from doctor.collect.static.analysis import Analysis
from doctor.collect.static.facts import Facts
from doctor.collect.static.ops import ACTIVATION_KIND, LINEAR_TYPES, NORM_TYPES, Op
from doctor.collect.static.sites import fmt_site

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus)
_MODULE_INTERNALS = frozenset(vars(nn.Module()))  # training, _parameters, _modules, hooks...


def check(a: Analysis, f: Facts) -> None:
    model = a.model
    mods = list(model.modules())
    param_layers = sum(any(True for _ in m.parameters(recurse=False)) for m in mods)
    f.scalars.update({
        "static.activation_layers": sum(isinstance(m, _ACTIVATIONS) for m in mods),
        "static.relu_layers": sum(isinstance(m, RELU_FAMILY) for m in mods),
        "static.saturating_activations": sum(isinstance(m, SATURATING) for m in mods),
        "static.normalization_layers": sum(isinstance(m, NORM_TYPES) for m in mods),
        "static.param_layers": param_layers,
        "static.depth": param_layers,  # layers with their own weights, the depth gradients must cross
        "static.batchnorm_layers": sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods),
    })
    for path, m in model.named_modules():
        if path:
            f.at(path, a.inputs.sites.of(m))
    _unregistered(a, f)
    _frozen(a, f)
    _init(a, f)


def _containers(value: Any, key: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(subscripted name, item) for modules and tensors held in plain lists, tuples, sets and dicts."""
    if isinstance(value, (nn.Module, torch.Tensor)):
        yield key, value
    elif depth < 2 and isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            yield from _containers(item, f"{key}[{i}]", depth + 1)
    elif depth < 2 and isinstance(value, dict):
        for k, item in value.items():
            yield from _containers(item, f"{key}[{k!r}]", depth + 1)


def _unregistered(a: Analysis, f: Facts) -> None:
    """Modules and trainable tensors stored where nn.Module does not look: the optimizer never sees them."""
    model = a.model
    modules = {id(m) for m in model.modules()}
    params = {id(p) for p in model.parameters()}
    count, numel, first = 0, 0, None
    for path, m in model.named_modules():
        for attr, value in vars(m).items():
            if attr in _MODULE_INTERNALS:
                continue
            for key, obj in _containers(value, attr):
                if isinstance(obj, nn.Module):
                    if id(obj) in modules:
                        continue
                    size = sum(p.numel() for p in obj.parameters())
                    if not size:
                        continue  # a parameter-free layer (ReLU) in a list trains nothing either way
                elif obj.requires_grad and id(obj) not in params and obj.is_leaf:
                    size = obj.numel()
                else:
                    continue
                count += 1
                numel += size
                if first is None:
                    subject = f"{path}.{key}" if path else key
                    site = _assignment_site(a, type(m).__name__, attr) or (
                        a.inputs.sites.of(obj) if isinstance(obj, nn.Module) else None)
                    first = f.at(subject, site)
    f.scalars["static.unregistered_count"] = count
    f.scalars["static.unregistered_params"] = numel
    if first is not None:
        f.scalars["static.unregistered_at"] = first


def _assignment_site(a: Analysis, cls: str, attr: str) -> Optional[str]:
    src = a.source
    line = src.attribute_lines.get((cls, attr)) if src is not None else None
    return fmt_site(src.path, line) if src is not None and line else None


def _frozen(a: Analysis, f: Facts) -> None:
    model = a.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    f.scalars["static.total_params"] = total
    f.scalars["static.trainable_params"] = trainable
    f.scalars["static.frozen_params"] = total - trainable
    out = a.output_layer
    mods = dict(model.named_modules())
    own = list(mods[out].parameters(recurse=False)) if out in mods else []
    out_frozen = bool(own) and not any(p.requires_grad for p in own) and trainable > 0
    f.scalars["static.output_layer_frozen"] = out_frozen
    if out is not None:
        f.scalars["static.output_layer"] = out
    at = out if out_frozen else next((n for n, m in mods.items() if any(not p.requires_grad for p in
                                                                          m.parameters(recurse=False))), None)
    if at is not None:
        f.scalars["static.frozen_at"] = at


def _following(a: Analysis) -> dict[str, Optional[Op]]:
    """For each weight layer in the graph, the op that reads its output (None at a branch)."""
    g = a.graph
    if g is None:
        return {}
    return {op.path: g.next_layer(op) for op in a.forward_layers if op.is_linear_layer}


def _init(a: Analysis, f: Facts) -> None:
    """Each weight layer's initial std against He (before ReLU-like units) or Xavier (otherwise)."""
    follows = _following(a)
    leaves = [(n, m) for n, m in a.model.named_modules() if n and not any(True for _ in m.children())]
    out = a.output_layer
    worst: Optional[tuple[float, str, str, float]] = None
    smallest: Optional[tuple[float, str, str, float]] = None
    constant: list[tuple[str, float]] = []
    for i, (path, m) in enumerate(leaves):
        w = getattr(m, "weight", None)
        if not isinstance(m, LINEAR_TYPES) or not isinstance(w, torch.Tensor) or w.dim() < 2 \
                or isinstance(w, nn.parameter.UninitializedParameter) or w.numel() < 2:
            continue
        if path in follows:
            nxt = follows[path]
            norm, act = (nxt.is_norm, nxt.activation) if nxt is not None else (False, None)
        else:  # no graph: the next leaf in definition order, as in an nn.Sequential
            nxt_mod = leaves[i + 1][1] if i + 1 < len(leaves) else None
            norm = isinstance(nxt_mod, NORM_TYPES)
            act = ACTIVATION_KIND.get(type(nxt_mod).__name__)  # the same kinds the graph gives
        with torch.no_grad():
            wf = w.detach().float()
            std = float(wf.std())
            is_constant = bool(wf.max() == wf.min())
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        he = act in ("relu", "other")
        ref = math.sqrt(2.0 / fan_in) if he else math.sqrt(2.0 / (fan_in + fan_out))
        scale = std / ref if ref > 0 else None
        is_out = path == out
        f.layer(path, init_std=std, init_scale=None if is_constant else scale, init_reference="He" if he else "Xavier",
                init_constant=is_constant, is_output_layer=is_out, followed_by_norm=norm)
        if is_constant:
            if not is_out:
                constant.append((path, float(wf.flatten()[0])))
            continue
        if norm or scale is None:
            continue  # a normalisation layer right after undoes any scale
        if is_out:
            continue  # the output layer's scale sets the initial logits, which the init_loss probe measures
        if he:
            high = low = (scale, path, "He", std)
        else:
            # Xavier averages fan-in and fan-out; a layer whose fan-out dwarfs its fan-in (a patch-embedding
            # conv, stride = kernel: ViT's conv_proj has fan-out 256x its fan-in) is rightly drawn at the
            # LeCun scale 1/sqrt(fan_in), which keeps the forward signal's scale. Too large is judged against
            # the larger of the two, too small against the smaller, so neither flags a standard init.
            lecun = math.sqrt(1.0 / fan_in)
            high = (std / max(ref, lecun), path, "Xavier" if ref >= lecun else "LeCun (fan-in)", std)
            low = (std / min(ref, lecun), path, "Xavier" if ref <= lecun else "LeCun (fan-in)", std)
        if worst is None or high[0] > worst[0]:
            worst = high
        if smallest is None or low[0] < smallest[0]:
            smallest = low
    f.scalars["static.constant_init_layers"] = len(constant)
    if constant:
        f.scalars["static.constant_init_at"] = constant[0][0]
        f.scalars["static.constant_init_value"] = constant[0][1]
    if worst is not None:
        f.scalars.update({"static.init_scale_max": worst[0], "static.init_scale_max_at": worst[1],
                          "static.init_scale_max_reference": worst[2], "static.init_scale_max_std": worst[3]})
    if smallest is not None:
        f.scalars.update({"static.init_scale_min": smallest[0], "static.init_scale_min_at": smallest[1],
                          "static.init_scale_min_reference": smallest[2], "static.init_scale_min_std": smallest[3]})
