"""Fix kinds for --verify-fixes: one module per fix, named after what it changes, found by file name.

A fix module defines `apply(ctx) -> (ctx, sentence)`: a changed copy of the probes' context (the
user's model is deep-copied before any change, their file is never written) and one sentence saying
what was changed, with the numbers. It raises `NotApplicable` when this setup gives it nothing to
change. The names are read from the file names, so the rule loader (no torch) can check a rule's
`apply:` without importing any fix.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

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
