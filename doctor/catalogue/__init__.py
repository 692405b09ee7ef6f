"""The catalogue of metric and series names, gathered from one module per family (no torch here).

Every name a rule's `when`, `message`, causes or evidence may use is declared in a module of
this package as `METRICS` (a list of MetricDef) and `SERIES` (name -> description), so a typo
in a rule is a load error. Add a family by adding a module; the names must not collide.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import Enum
from typing import Literal

from pydantic import BaseModel

Scope = Literal["model", "layer", "class"]


class MetricKind(str, Enum):
    number = "number"
    bool = "bool"
    text = "text"


class MetricDef(BaseModel):
    """One name a rule may use: what it measures, in which unit, at which scope, by which probe."""

    name: str
    scope: Scope = "model"
    kind: MetricKind = MetricKind.number
    unit: str = ""
    probe: str
    doc: str


def metric(name: str, probe: str, doc: str, *, scope: Scope = "model", kind: str = "number", unit: str = "") -> MetricDef:
    return MetricDef(name=name, scope=scope, kind=MetricKind(kind), unit=unit, probe=probe, doc=doc)


def _gather() -> tuple[dict[str, MetricDef], dict[str, str]]:
    metrics: dict[str, MetricDef] = {}
    series: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for d in getattr(mod, "METRICS", []):
            if d.name in metrics:
                raise RuntimeError(f"metric {d.name!r} is declared twice (catalogue module {info.name})")
            metrics[d.name] = d
        for name, doc in getattr(mod, "SERIES", {}).items():
            if name in series:
                raise RuntimeError(f"series {name!r} is declared twice (catalogue module {info.name})")
            series[name] = doc
    return metrics, series


CATALOGUE, SERIES = _gather()
