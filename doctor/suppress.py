"""Suppression comments in the user's code: `# doctor: ignore[rule-id]` and `# doctor: ignore-file[rule-id]`.

`# doctor: ignore[rule-a, rule-b]` on the line that constructs a layer silences those rules' findings
located at that line (Finding.location file:line). `# doctor: ignore-file[rule-a]` anywhere in the
target file silences rule-a for the whole check, and in another file for findings located there.
Suppressed findings leave `findings` for `suppressed` and are counted. A comment that silenced nothing
although its rule was evaluated, that names an unknown rule or that names none is reported as a note
(Report.unused_suppressions); notes never change the exit code.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from pathlib import Path
from typing import Iterable, Optional

from doctor.report import Finding, Suppression

COMMENT = re.compile(r"#\s*doctor\s*:\s*(?P<kind>ignore-file|ignore)\b\s*(?:\[(?P<rules>[^\]]*)\])?")


def _comments(text: str) -> Iterable[tuple[int, str]]:
    """(line, comment) for every real comment; a file that does not tokenize falls back to a line scan."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        for i, line in enumerate(text.splitlines(), 1):
            if "#" in line:
                yield i, line[line.index("#"):]


def scan(path: str) -> list[Suppression]:
    """The suppression comments in one file (none when it cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line, comment in _comments(text):
        m = COMMENT.search(comment)
        if not m:
            continue
        rules = [r.strip() for r in (m.group("rules") or "").split(",") if r.strip()]
        out.append(Suppression(file=path, line=line, kind="file" if m.group("kind") == "ignore-file" else "line",
                               rules=rules))
    return out


def _resolve(file: str, base: Optional[str]) -> Optional[str]:
    for cand in (file, os.path.join(base, file) if base else None):
        if cand and os.path.isfile(cand):
            return os.path.realpath(cand)
    return None


class Applied:
    """What apply() did: the findings left, those silenced, and the notes about the comments."""

    def __init__(self) -> None:
        self.active: list[Finding] = []
        self.suppressed: list[Finding] = []
        self.notes: list[Suppression] = []


def apply(findings: list[Finding], target: Optional[str], known: set[str], decided: set[str]) -> Applied:
    """Split findings into active and suppressed by the comments in `target` and in the files they point to.

    `known` is every rule id; `decided` the rules that were evaluated in this check (fired or passed),
    the only ones whose comment can be called unused.
    """
    base = os.path.dirname(os.path.abspath(target)) if target else None
    target_real = _resolve(target, None) if target else None
    files: dict[str, list[Suppression]] = {}

    def comments(real: Optional[str]) -> list[Suppression]:
        if real is None:
            return []
        if real not in files:
            files[real] = scan(real)
        return files[real]

    comments(target_real)
    used: set[tuple[str, int, str]] = set()
    out = Applied()
    for f in findings:
        own = _resolve(f.location.file, base) if f.location.file else None
        hit: Optional[Suppression] = None
        for s in comments(own):
            if s.kind == "line" and s.line == f.location.line and f.rule in s.rules:
                hit = s
                break
        if hit is None:
            scope = [target_real] + ([own] if own and own != target_real else [])
            hit = next((s for real in scope for s in comments(real) if s.kind == "file" and f.rule in s.rules), None)
        if hit is None:
            out.active.append(f)
            continue
        used.add((hit.file, hit.line, f.rule))
        out.suppressed.append(f.model_copy(update={"suppressed_by": f"{_show(hit.file)}:{hit.line}"}))

    for real in files:
        for s in files[real]:
            note = _note(s, used, known, decided)
            if note is not None:
                out.notes.append(note)
    return out


def _note(s: Suppression, used: set, known: set[str], decided: set[str]) -> Optional[Suppression]:
    comment = f"# doctor: {'ignore-file' if s.kind == 'file' else 'ignore'}[...]"
    if not s.rules:
        problem = f"{comment} names no rule; write the rule ids inside the brackets, e.g. [dead-relu]"
        return s.model_copy(update={"file": _show(s.file), "problem": problem})
    unknown = [r for r in s.rules if r not in known]
    if unknown:
        problem = f"names unknown rule{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (see `doctor rules`)"
        return s.model_copy(update={"file": _show(s.file), "rules": unknown, "problem": problem})
    unused = [r for r in s.rules if r in decided and (s.file, s.line, r) not in used]
    if not unused:
        return None
    where = "in this file" if s.kind == "file" else "at this line"
    problem = f"unused: {', '.join(unused)} did not fire {where}; remove it from the comment"
    return s.model_copy(update={"file": _show(s.file), "rules": unused, "problem": problem})


def _show(path: str) -> str:
    """A path as the user wrote it: relative to the working directory when it is under it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
