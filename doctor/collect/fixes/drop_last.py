"""Build the training DataLoader with drop_last=True, so no epoch ends on a batch smaller than the rest."""

from __future__ import annotations

import ast
import dataclasses

import torch
from torch.utils.data import DataLoader

from doctor.collect import data as datamod
from doctor.collect.context import last_batch_rows
from doctor.collect.fixes import NotApplicable, _source

# The bursts train on the cached full batches either way; what changes is the epoch's last batch, so
# the fix measures that batch itself, on the loader as it was and as fixed, and re-runs no probe.
PROBES: tuple[str, ...] = ()
COMPARE = "epoch.last_batch_trains"


def _rows(loader) -> tuple[int, int, int]:
    """(rows in an epoch's last batch, samples per epoch, batch size), as the setup measured them."""
    got = last_batch_rows(loader)
    if got is None:
        raise NotApplicable("the training DataLoader's sampler has no length")
    return got


def apply(ctx):
    loader = ctx.train_loader
    if not isinstance(loader, DataLoader) or not loader.batch_size or loader.batch_sampler is None:
        raise NotApplicable("the training data is not a DataLoader that batches by size")
    if loader.drop_last:
        raise NotApplicable("the training DataLoader drops its incomplete last batch already")
    rows, n, bs = _rows(loader)
    new = DataLoader(loader.dataset, batch_size=bs, sampler=loader.sampler, collate_fn=loader.collate_fn,
                     drop_last=True)
    fixed = dataclasses.replace(ctx, train_loader=new, cache={})
    return fixed, f"drop_last=True on the training DataLoader ({n} samples: the last batch of {rows} is left out)"


def _last_batch_trains(ctx, loader) -> tuple[bool, int, str]:
    """Train one step on an epoch's last batch (its size, from the last samples): (trained, rows, error)."""
    rows, n, _bs = _rows(loader)
    ds = loader.dataset
    batch = datamod.as_batch(loader.collate_fn([ds[i] for i in range(len(ds) - rows, len(ds))]), name="train_loader")
    x, y = (t.to(ctx.device) if isinstance(t, torch.Tensor) else t for t in batch)
    model = ctx.fresh_model()
    try:
        ctx.batch_loss(model, (x, y)).backward()
    except Exception as exc:  # noqa: BLE001 - the failure is the measurement
        return False, rows, f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        model.zero_grad(set_to_none=True)
        ctx.fresh_model()  # BatchNorm's running statistics moved: put the initial state back
    return True, rows, ""


def measure(ctx, fixed):
    ok_b, rows_b, err_b = _last_batch_trains(ctx, ctx.train_loader)
    ok_a, rows_a, err_a = _last_batch_trains(fixed, fixed.train_loader)
    before = {COMPARE: ok_b}
    after = {COMPARE: ok_a, "setup.last_batch_rows": rows_a}
    said = (f"an epoch's last batch ({rows_b} sample{'s' if rows_b != 1 else ''}) "
            + ("trained" if ok_b else f"raised {err_b}") + f" before; with the fix it holds {rows_a} and "
            + ("trains" if ok_a else f"raises {err_a}"))
    return before, after, said


def edit(ctx) -> list:
    """drop_last=True in the training DataLoader(...) call of the user's file."""
    path = ctx.setup.path
    _text, tree = _source.parsed(path)
    if tree is None:
        return []
    found = _source.calls(tree, {"DataLoader"})
    named = []
    for node in tree.body:  # train_loader = DataLoader(...) at module level names the training one
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(value, ast.Call) and value in found and any(
                isinstance(t, ast.Name) and "train" in t.id for t in targets):
            named.append(value)
    chosen = named if named else found if len(found) == 1 else []
    if len(chosen) != 1:
        return []
    call = chosen[0]
    kw = _source.keyword(call, "drop_last")
    if kw is not None:
        return [_source.replace(path, kw.value, "True")]
    return [_source.insert_argument(path, call, "drop_last=True")]
