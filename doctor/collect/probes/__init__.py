"""Probes: short seeded bursts, each measuring one thing on the device.

A probe is a module here exposing PROBE, a `Probe`; it is found by that convention, no list to
edit. Probes run by `order`, cheapest first, so a hang or crash late still leaves the early numbers.
Static probes (no training step; `--static` runs only these) live in modules named `static_*` and
set `static=True`; `registry(static_only=True)` imports nothing else, so `--static` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Optional


class SkipProbe(Exception):
    """Raised by a probe that cannot run here; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Probe:
    name: str
    doc: str
    run: Callable[..., Optional[dict[str, str]]]  # (ctx) -> {record name: skip reason} for sub-records
    needs_data: bool = False
    needs_model: bool = True  # False: it can run when the model's forward or loss raises
    records: tuple[str, ...] = ()  # names it reports under, when one burst measures several things
    cost: str = ""  # what it spends, in steps or samples, per budget
    order: int = 50  # run position: static 0, data 10, init loss 20, training burst 50
    static: bool = False  # no training step, at most one example batch: allowed under --static
    budgets: tuple[str, ...] = ("quick", "standard", "deep")  # the --budget values it runs at; skipped at others
    opt_in: str = ""  # a CollectSpec switch ("deploy", "nproc") that runs it at any budget; off, only its budgets

    @property
    def reported(self) -> tuple[str, ...]:
        return self.records or (self.name,)


def registry(static_only: bool = False) -> list[Probe]:
    """Every probe module's PROBE, in run order (then by name, so the order never depends on the disk)."""
    probes = []
    for info in pkgutil.iter_modules(__path__):
        if static_only and not info.name.startswith("static_"):
            continue  # not even imported: the training probes pull in scipy and friends
        probe = getattr(importlib.import_module(f"{__name__}.{info.name}"), "PROBE", None)
        if isinstance(probe, Probe) and (probe.static or not static_only):
            probes.append(probe)
    return sorted(probes, key=lambda p: (p.order, p.name))
