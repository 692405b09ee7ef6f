"""GitHub Actions workflow commands: one annotation per finding, the most severe ten, from the typed Report.

`::error file=F,line=N,title=T::message` shows on the pull request's diff at that line. GitHub shows
at most ten annotations of a kind per step, so doctor sends the ten that matter most, errors
first; the rest are in the report. Unused suppression comments follow as notices within the cap.
"""

from __future__ import annotations

from typing import Optional

from doctor.render import locate, values
from doctor.report import Report

MAX_ANNOTATIONS = 10
COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def _data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, file: Optional[str] = None, line: Optional[int] = None,
               title: str = "") -> str:
    props = []
    if file:
        props.append(f"file={_prop(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={_prop(title)}")
    return f"::{level}{(' ' + ','.join(props)) if props else ''}::{_data(message)}"


def annotations(report: Report) -> tuple[list[str], int]:
    """The annotation lines, and how many findings were left out by the cap."""
    out = []
    for e in report.errors:
        out.append(annotation("error", e.message + (f" — {e.hint}" if e.hint else ""),
                              file=locate.rel(e.file) if e.file else None, line=e.line,
                              title=f"doctor: {e.kind}"))
    # New findings first (most severe first); those recorded in a baseline only after them, as notices.
    findings = sorted(values.ordered(report.findings), key=lambda f: f.baseline == "unchanged")
    for f in findings:
        file, line = locate.where(f, report)
        subject = values.subject(f.location)
        fix = next((x for c in f.causes if c.status in ("supported", "possible") for x in c.fixes), "")
        title = f"doctor {f.rule}" + (f" ({subject})" if subject else "")
        level = COMMAND[f.severity.value] if f.baseline != "unchanged" else "notice"
        out.append(annotation(level, f.message + (f"\nFix: {fix}" if fix else ""), file=file, line=line, title=title))
    for s in report.unused_suppressions:
        out.append(annotation("notice", f"Suppression comment: {s.problem}", file=locate.rel(s.file), line=s.line,
                              title="doctor unused-suppression"))
    left = max(0, len(out) - MAX_ANNOTATIONS)
    return out[:MAX_ANNOTATIONS], left


def render_github(report: Report) -> str:
    lines, _ = annotations(report)
    return "\n".join(lines) + ("\n" if lines else "")
