"""Fix kinds for --verify-fixes: one module per fix, named after what it changes, found by file name.

A fix module defines `apply(ctx) -> (ctx, sentence)`: a changed copy of the probes' context (the
user's model is deep-copied before any change, their file is never written) and one sentence saying
what was changed, with the numbers. It raises `NotApplicable` when this setup gives it nothing to
change. The names are read from the file names, so the rule loader (no torch) can check a rule's
`apply:` without importing any fix.

Optional, per module: `edit(ctx) -> list[SourceEdit]`, where the user's file would change (a suggested
diff; [] when the site is not plain); `COMPARE`, the headline metric when the fix changes the loss's
units; `FACTS`, static facts the fix makes true by construction; `PROBES`, the probes to re-run when
not the rule's own; `measure(ctx, fixed) -> (before, after, sentence)`, a measurement of the fix's
own on the setup as it was and as fixed (drop-last: does the epoch's last batch train).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Optional

FIX_KINDS: frozenset[str] = frozenset(
    info.name.replace("_", "-") for info in pkgutil.iter_modules([str(Path(__file__).parent)])
    if not info.name.startswith("_"))


class NotApplicable(Exception):
    """This setup has nothing the fix could change (the sentence says why)."""


def load(kind: str) -> ModuleType:
    if kind not in FIX_KINDS:
        raise KeyError(kind)
    return importlib.import_module(f"{__name__}.{kind.replace('-', '_')}")


def swap(model, name: str, new) -> None:
    """Put module `new` where the submodule called `name` (dotted, as named_modules gives it) is."""
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


def last_output_activation(model) -> Optional[str]:
    """The name of the model's last Softmax, LogSoftmax, Sigmoid or Softmin module, or None."""
    from torch import nn  # noqa: PLC0415 - FIX_KINDS is read without torch

    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Softmax, nn.LogSoftmax, nn.Sigmoid, nn.Softmin)):
            last = name
    return last


def strip_output_activation(model) -> Optional[str]:
    """Replace the last output activation module by Identity; its name and type, or None when there is none."""
    from torch import nn  # noqa: PLC0415

    last = last_output_activation(model)
    if last is None:
        return None
    kind = type(model.get_submodule(last)).__name__
    swap(model, last, nn.Identity())
    return f"module {last} ({kind})"


def with_model(ctx, change):
    """A context whose model is a deep copy of the user's at its initial weights, changed by `change(model)`.

    `change` returns a count (of what it changed) or raises NotApplicable; the copy's own initial state
    is taken after the change, so every probe starts from the same changed model.
    """
    model = copy.deepcopy(ctx.fresh_model())
    n = change(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    setup = dataclasses.replace(ctx.setup, model=model)
    return dataclasses.replace(ctx, setup=setup, init_state=state, cache={}), n
