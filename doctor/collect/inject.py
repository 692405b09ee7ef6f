"""Call a user's callable with only the arguments its signature names, as pytest does with fixtures."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping


class InjectionError(Exception):
    """A callable asks for an argument doctor cannot provide."""


def call_injected(fn: Callable[..., Any], available: Mapping[str, Any], *, what: str) -> Any:
    """Call `fn` with the arguments it names from `available`; defaults cover the rest."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C callables: call bare
        return fn()
    kwargs: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in available:
            kwargs[name] = available[name]
        elif param.default is param.empty:
            known = ", ".join(sorted(available))
            raise InjectionError(
                f"{what} asks for an argument '{name}' that doctor cannot provide "
                f"(it can pass: {known}); give it a default value."
            )
    positional_only = [n for n, p in sig.parameters.items() if p.kind is p.POSITIONAL_ONLY and n in kwargs]
    args = [kwargs.pop(n) for n in positional_only]
    return fn(*args, **kwargs)
