"""Fingerprints of findings, and baseline files: accept today's findings, fail only on new ones.

A fingerprint is the rule id and what the finding is about (module path, class label, or the
whole model), hashed. No line numbers go in, so it survives edits above the layer, reruns and
reformatting; renaming the module or the rule makes a new finding, which is what a reviewer wants.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Optional

from pydantic import BaseModel, Field, ValidationError

from doctor.report import BaselineEntry, BaselineInfo, Finding

FORMAT_VERSION = 1


class BaselineError(Exception):
    """A baseline file that cannot be read or written; the CLI turns it into exit 2."""


class _File(BaseModel):
    doctor_baseline: int = FORMAT_VERSION
    entries: list[BaselineEntry] = Field(default_factory=list)


def subject(f: Finding) -> str:
    """What the finding is about, as it goes into the fingerprint."""
    if f.location.module:
        return f.location.module
    if f.location.label not in (None, ""):
        return f"class {f.location.label}"
    return ""


def fingerprint(rule: str, subject_: str) -> str:
    return hashlib.sha256(f"{rule}\x1f{subject_}".encode()).hexdigest()[:20]


def assign(findings: Iterable[Finding]) -> None:
    """Fill in each finding's fingerprint."""
    for f in findings:
        f.fingerprint = fingerprint(f.rule, subject(f))


def target_key(target: str, baseline: Path) -> str:
    """The target as the baseline records it: relative to the baseline's folder, with '/' separators,
    so the same file works from any working directory and on any OS."""
    path, sep, factory = target.rpartition(":")
    if not (sep and factory.isidentifier() and path):
        path, factory = target, ""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(baseline.parent or Path(".")))
    return Path(rel).as_posix() + (f":{factory}" if factory else "")


def load(path: Path) -> list[BaselineEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"--baseline {path}: no such file (create it with --write-baseline {path})") from None
    except OSError as exc:
        raise BaselineError(f"--baseline {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BaselineError(f"--baseline {path}: not a doctor baseline (not UTF-8 text)") from None
    try:
        return _File.model_validate_json(text).entries
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BaselineError(f"--baseline {path}: not a doctor baseline ({where + ': ' if where else ''}{first['msg']})") from None


def write(path: Path, key: str, findings: Iterable[Finding]) -> int:
    """Record `findings` for target `key` in `path`, keeping other targets' entries. Returns the count."""
    keep: list[BaselineEntry] = []
    if path.exists():
        try:
            keep = [e for e in load(path) if e.target != key]
        except BaselineError as exc:
            raise BaselineError(str(exc).replace("--baseline", "--write-baseline", 1) + "; refusing to overwrite it") from None
    mine = {f.fingerprint: BaselineEntry(fingerprint=f.fingerprint, rule=f.rule, subject=subject(f), target=key)
            for f in findings}
    entries = sorted(keep + list(mine.values()), key=lambda e: (e.target, e.rule, e.subject))
    body = _File(entries=entries).model_dump(mode="json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"--write-baseline {path}: cannot write it ({exc.strerror})") from None
    return len(mine)


def apply(findings: list[Finding], entries: list[BaselineEntry], key: str, file: Optional[Path] = None) -> BaselineInfo:
    """Mark each finding new or unchanged against the entries recorded for target `key`."""
    mine = {e.fingerprint: e for e in entries if e.target == key}
    seen = set()
    info = BaselineInfo(file=str(file) if file else "")
    for f in findings:
        if f.fingerprint in mine:
            f.baseline = "unchanged"
            info.known += 1
            seen.add(f.fingerprint)
        else:
            f.baseline = "new"
            info.new += 1
    info.absent = [e for fp, e in mine.items() if fp not in seen]
    return info
