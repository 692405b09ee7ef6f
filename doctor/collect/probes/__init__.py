"""Probes: short seeded bursts, each measuring one thing on the device.

A probe is a module here exposing PROBE, a `Probe`. The registry is plain sorted data: the
order probes run in, cheapest first, so a hang or crash late still leaves the early numbers.
"""

from __future__ import annotations

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

    @property
    def reported(self) -> tuple[str, ...]:
        return self.records or (self.name,)


def registry() -> list[Probe]:
    from doctor.collect.probes import data_stats, init_loss, static_facts, training_burst

    return [static_facts.PROBE, data_stats.PROBE, init_loss.PROBE, training_burst.PROBE]
