"""Turn the target's data (loader, dataset, tensor pair, callable) into batches, and synthesise inputs."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from doctor.collect.inject import InjectionError, call_injected
from doctor.collect.target import TargetError

Batch = tuple[torch.Tensor, torch.Tensor]


def resolve(obj: Any, *, name: str, inject: dict) -> Any:
    """The data value itself: a callable (`def train_data(batch_size): ...`) is called with what it asks for."""
    if callable(obj) and not isinstance(obj, (DataLoader, Dataset, torch.Tensor)):
        try:
            return call_injected(obj, inject, what=name)
        except TargetError:
            raise
        except InjectionError as exc:
            raise TargetError(str(exc), kind="load") from exc
        except Exception as exc:  # noqa: BLE001
            raise TargetError(f"calling {name}() failed", kind="load", cause=exc) from exc
    return obj


def to_loader(obj: Any, *, name: str, batch_size: int, seed: int, shuffle: bool, inject: dict) -> Iterable:
    """A re-iterable source of (inputs, targets) batches from any accepted value shape."""
    obj = resolve(obj, name=name, inject=inject)
    if isinstance(obj, DataLoader):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, torch.Tensor) for t in obj):
        x, y = obj
        if len(x) != len(y):
            raise TargetError(f"{name}: inputs have {len(x)} samples but targets have {len(y)}", kind="load")
        obj = TensorDataset(x, y)
    elif isinstance(obj, tuple) or (isinstance(obj, list) and len(obj) == 2 and hasattr(obj[0], "shape")):
        # A tuple is read as (inputs, targets), never as a dataset of whole tensors: say what is wrong with it.
        kinds = ", ".join(type(t).__name__ for t in obj)
        raise TargetError(
            f"{name} is a {type(obj).__name__} of ({kinds}); doctor accepts an (inputs, targets) pair of tensors",
            kind="load", hint="Convert arrays with torch.as_tensor(...), and pass extra fields through a Dataset.")
    if isinstance(obj, Dataset) or (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")):
        g = torch.Generator().manual_seed(seed)
        return DataLoader(obj, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=False)
    raise TargetError(
        f"{name} is a {type(obj).__name__}; doctor accepts a DataLoader, a Dataset, "
        "an (inputs, targets) tensor pair, or a callable returning one of these",
        kind="load",
    )


INPUT_KEYS = ("input", "inputs", "x", "image", "images", "pixel_values", "input_ids")
TARGET_KEYS = ("target", "targets", "label", "labels", "y")


def _dict_keys(batch: Mapping) -> tuple[Optional[str], Optional[str]]:
    """The input and target keys of a dict batch: the first recognised name of each, or None."""
    keys = {str(k).lower(): k for k in batch}
    x = next((keys[k] for k in INPUT_KEYS if k in keys), None)
    y = next((keys[k] for k in TARGET_KEYS if k in keys), None)
    return x, y


def as_batch(batch: Any, *, name: str) -> Batch:
    """Check a loader's item is an (inputs, targets) pair of tensors, or a dict with recognisable keys."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], torch.Tensor) \
            and isinstance(batch[1], torch.Tensor):
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        kx, ky = _dict_keys(batch)
        if kx is not None and ky is not None and isinstance(batch[kx], torch.Tensor) \
                and isinstance(batch[ky], torch.Tensor):
            return batch[kx], batch[ky]
        seen = ", ".join(f"'{k}'" for k in batch) or "none"
        if kx is None or ky is None:
            missing = "inputs" if kx is None else "targets"
            raise TargetError(
                f"{name} yields dicts with keys {seen}; doctor found no {missing} among them",
                kind="load",
                hint=f"Name the inputs one of {', '.join(INPUT_KEYS)} and the targets one of "
                     f"{', '.join(TARGET_KEYS)}, or yield (inputs, targets) pairs.")
        kinds = f"'{kx}' is a {type(batch[kx]).__name__}, '{ky}' a {type(batch[ky]).__name__}"
        raise TargetError(f"{name} yields dicts whose inputs and targets must be tensors: {kinds}", kind="load",
                          hint="Convert them with torch.as_tensor(...) in the Dataset or a collate_fn.")
    shape = type(batch).__name__
    raise TargetError(f"{name} yields a {shape}; doctor expects (inputs, targets) tensor pairs", kind="load")


def batch_layout(batch: Any, *, name: str) -> Optional[str]:
    """A note for the report when a batch is not a plain (inputs, targets) pair: which parts doctor used."""
    if isinstance(batch, Mapping):
        kx, ky = _dict_keys(batch)
        rest = [f"'{k}'" for k in batch if k not in (kx, ky)]
        note = f"{name} yields dicts: inputs from '{kx}', targets from '{ky}'"
        if rest:
            note += f"; not passed to the model: {', '.join(rest)}"
        return note + "."
    if isinstance(batch, (tuple, list)) and len(batch) > 2:
        return f"{name} yields {len(batch)} items per batch: the first is used as inputs, the second as targets."
    return None


def read_batches(loader: Iterable, *, name: str) -> Iterator[tuple[Any, torch.Tensor, torch.Tensor]]:
    """The loader's batches as (raw, inputs, targets); an error in the user's data code becomes a TargetError.

    Close the generator when done early: that drops the loader's iterator and so its worker processes."""
    it = iter(loader)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - the user's dataset, sampler or collate may raise anything
            raise TargetError(f"reading a batch from {name} failed", kind="load", cause=exc,
                              hint="Iterate the data by hand (next(iter(loader))) to reproduce it.") from exc
        x, y = as_batch(raw, name=name)
        yield raw, x, y


@dataclass
class Taken:
    """The first batches of a loader, and how they were read."""

    batches: list[Batch]
    layout: Optional[str] = None  # a note when a batch is not a plain (inputs, targets) pair
    dicts: bool = False  # the loader yields dicts (a custom train_step then gets pairs, not its dicts)


def take_batches(loader: Iterable, n: int, *, name: str, device: torch.device, max_bytes: int = 1 << 30) -> Taken:
    """Up to `n` batches moved to the device, stopping early at `max_bytes` so big images stay affordable."""
    taken = Taken(batches=[])
    out = taken.batches
    size = 0
    if n <= 0:
        return taken
    batches = read_batches(loader, name=name)
    for raw, x, y in batches:
        if not out:
            taken.layout, taken.dicts = batch_layout(raw, name=name), isinstance(raw, Mapping)
        out.append((x.to(device, non_blocking=True), y.to(device, non_blocking=True)))
        size += x.element_size() * x.numel() + y.element_size() * y.numel()
        if size >= max_bytes or len(out) >= n:
            break
    batches.close()
    return taken


def cycle(batches: list[Batch]) -> Iterator[Batch]:
    return itertools.cycle(batches)


def infer_task(loss_fn: Any, targets: Optional[torch.Tensor], out_dim: Optional[int]) -> str:
    """classification, binary, multilabel or regression, from the loss type, then the targets."""
    name = type(loss_fn).__name__ if loss_fn is not None else ""
    if name in ("CrossEntropyLoss", "NLLLoss"):
        return "classification"
    if name in ("BCELoss", "BCEWithLogitsLoss"):
        if targets is not None and targets.dim() >= 2 and targets.shape[-1] > 1:
            return "multilabel"
        return "binary"
    if name in ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"):
        return "regression"
    if targets is not None:
        if not targets.is_floating_point() and targets.dim() == 1:
            if out_dim is None:  # the output size is unknown (the forward raised): judge by the labels alone
                return "classification" if targets.numel() and int(targets.max()) > 1 else "binary"
            return "classification" if out_dim > 1 else "binary"
        if (not targets.is_floating_point() and targets.dim() >= 2 and out_dim is not None and out_dim > 1
                and targets.shape[-1] != out_dim):
            return "classification"  # a class index per position: (N, T) tags against (N, T, C) scores
        if targets.is_floating_point():
            finite = targets[torch.isfinite(targets)]
            binary_values = finite.numel() > 0 and bool(((finite == 0) | (finite == 1)).all())
            if binary_values and out_dim is not None:
                if out_dim == 1:
                    return "binary"
                if targets.dim() >= 2 and targets.shape[-1] == out_dim:
                    return "multilabel"
    return "regression"


def default_loss(task: str) -> nn.Module:
    return {
        "classification": nn.CrossEntropyLoss,
        "binary": nn.BCEWithLogitsLoss,
        "multilabel": nn.BCEWithLogitsLoss,
        "regression": nn.MSELoss,
    }[task]()


def first_layer(model: nn.Module) -> Optional[nn.Module]:
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.RNNBase,
                          nn.TransformerEncoderLayer, nn.MultiheadAttention, nn.LazyLinear)):
            return m
    return None


def synthesize_input(model: nn.Module, batch_size: int, example: Any, *, device: torch.device,
                     seed: int) -> torch.Tensor:
    """An input batch for a model with no data: from example_input, else from the first layer's shape."""
    if example is not None:
        if callable(example) and not isinstance(example, torch.Tensor):
            try:
                example = call_injected(example, {"batch_size": batch_size, "device": device, "seed": seed},
                                        what="example_input")
            except InjectionError as exc:
                raise TargetError(str(exc), kind="load") from exc
            except Exception as exc:  # noqa: BLE001
                raise TargetError("calling example_input() failed", kind="load", cause=exc) from exc
        if not isinstance(example, torch.Tensor):
            raise TargetError(f"example_input must be a tensor or return one, got {type(example).__name__}",
                              kind="load")
        return example.to(device)
    g = torch.Generator().manual_seed(seed)
    layer = first_layer(model)
    n = batch_size
    if isinstance(layer, nn.Linear) and not isinstance(layer, nn.LazyLinear):
        x = torch.randn(n, layer.in_features, generator=g)
    elif isinstance(layer, nn.Conv2d):
        x = torch.randn(n, layer.in_channels, 32, 32, generator=g)
    elif isinstance(layer, nn.Conv1d):
        x = torch.randn(n, layer.in_channels, 64, generator=g)
    elif isinstance(layer, nn.Conv3d):
        x = torch.randn(n, layer.in_channels, 8, 16, 16, generator=g)
    elif isinstance(layer, nn.Embedding):
        x = torch.randint(0, layer.num_embeddings, (n, 16), generator=g)
    elif isinstance(layer, nn.RNNBase):
        shape = (n, 16, layer.input_size) if layer.batch_first else (16, n, layer.input_size)
        x = torch.randn(*shape, generator=g)
    elif isinstance(layer, nn.TransformerEncoderLayer):
        d = layer.linear1.in_features
        x = torch.randn(n, 16, d, generator=g) if layer.self_attn.batch_first else torch.randn(16, n, d, generator=g)
    else:
        raise TargetError(
            "there is no data and doctor cannot tell the model's input shape",
            kind="load", hint="Define `example_input = torch.randn(...)` (one batch) or `train_data` in the file.",
        )
    return x.to(device)
