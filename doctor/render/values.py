"""Shared formatting of measured values, durations and counts for every output format."""

from __future__ import annotations

import math
from typing import Iterable

from doctor.metrics import Value
from doctor.render.charts import fmt
from doctor.report import Finding, Location


def show(value: Value, unit: str = "") -> str:
    """A value with its unit as a reader wants it: 0.62 fraction → "0.62 (62%)", 1200 x → "1200×"."""
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        s = f"{value:,}" if abs(value) >= 10000 else str(value)
    else:
        s = fmt(value)
    if unit == "fraction" and isinstance(value, float) and math.isfinite(value) and 0 <= value <= 1:
        return f"{s} ({value * 100:.0f}%)"
    if unit == "x":
        return f"{s}×"
    if unit in ("", "p"):
        return s
    return f"{s} {unit}"


def duration(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {s % 60:.0f} s"


def plural(n: int, word: str) -> str:
    # "info" is uncountable in the summary line ("0 info"), the rest take an s.
    return f"{n} {word}" if n == 1 or word == "info" else f"{n} {word}s"


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; the engine's order (its ranking) is kept within a severity."""
    return sorted(findings, key=lambda f: -f.severity.rank)


def short_path(file: str) -> str:
    """A path under the working directory as a relative one, as ruff and pytest print them."""
    import os  # noqa: PLC0415

    if os.path.isabs(file):
        try:
            rel = os.path.relpath(file)
        except ValueError:  # another drive on Windows
            return file
        if not rel.startswith(".."):
            return rel
    return file


def fileline(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    file = short_path(file)
    return f"{file}:{line}" if line else file


def subject(loc: Location) -> str:
    """What a finding is about: a module path, or a class for class-scoped rules."""
    label = getattr(loc, "label", None)  # class label; absent from older report models
    return loc.module or (f"class {label}" if label not in (None, "") else "")
