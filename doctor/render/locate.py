"""Where a finding sits in the user's files, for formats that need a file and a line (SARIF, GitHub)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from doctor.report import Finding, Report


def target_path(report: Report) -> str:
    """The target's file (or log folder), without a `:factory` suffix."""
    head, sep, tail = report.target.rpartition(":")
    return head if sep and tail.isidentifier() and head else report.target


def rel(path: str) -> str:
    """A path relative to the working directory (the repository root in CI), with '/' separators;
    left absolute when it lies outside."""
    if not path:
        return path
    r = os.path.relpath(os.path.abspath(path))
    return Path(path).as_posix() if r.startswith("..") else Path(r).as_posix()


def where(f: Finding, report: Report) -> tuple[Optional[str], int]:
    """(file, line) of a finding; the target file at line 1 when it has no line of its own."""
    if f.location.file:
        return rel(f.location.file), f.location.line or 1
    t = target_path(report)
    return (rel(t), 1) if t else (None, 1)
