"""The terminal report: findings most severe first, causes and fixes, probes, errors, one summary line."""

from __future__ import annotations

from doctor.metrics import ProbeStatus
from doctor.render import deploy, values, verified
from doctor.report import Evidence, Finding, Report

_SEV = {"error": "31;1", "warning": "33;1", "info": "36"}
_CAUSE = {"supported": ("supported", "32"), "possible": ("possible", "0"), "unknown": ("unknown", "2"), "ruled_out": ("ruled out", "2")}
_PROBE = {"ran": "32", "skipped": "33", "failed": "31;1"}
_FOLD = 4  # probes not run for one and the same reason, from this many on, take one line


class _Paint:
    def __init__(self, on: bool):
        self.on = on

    def __call__(self, code: str, s: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if self.on and code != "0" else s


def _ev(items: list[Evidence]) -> str:
    return ", ".join(f"{e.name} = {values.show(e.value, e.unit)}" for e in items)


def _where(f: Finding) -> str:
    fl = values.fileline(f.location.file, f.location.line)
    mod = values.subject(f.location)
    return f"{mod} ({fl})" if mod and fl else mod or fl


def _finding(f: Finding, widths: tuple[int, int], p: _Paint, verbose: bool) -> list[str]:
    where = _where(f)
    sev = p(_SEV[f.severity.value], f.severity.value.ljust(7))
    head = f"{sev}  {p('1', f.rule.ljust(widths[0]))}  {where.ljust(widths[1]) + '  ' if widths[1] else ''}{f.message}"
    out = [head.rstrip() + (p("2", "  (in baseline)") if f.baseline == "unchanged" else "")]
    pad = " " * 9
    if f.notes:  # a static suspicion met by a probe: say which way it went and how sure that leaves us
        out.append(f"{pad}{p('2', f'confidence {f.confidence}:')} {' '.join(f.notes)}")
    if f.evidence:
        out.append(f"{pad}{p('2', 'evidence:')} {_ev(f.evidence)}")
    for c in f.causes:
        label, code = _CAUSE[c.status]
        if c.status == "ruled_out":
            why = f" ({_ev(c.evidence)})" if c.evidence else ""
            out.append(p("2", f"{pad}- ruled out  {c.text}{why}"))
            continue
        mark = "+" if c.status == "supported" else "?" if c.status == "possible" else "~"
        out.append(f"{pad}{p(code, f'{mark} {label:<9}')}  {c.text}" + (f"  [{_ev(c.evidence)}]" if c.evidence and verbose else ""))
        for fix in c.fixes:
            out.append(f"{pad}  {' ' * 11}{p('32', '->')} {fix}")
        if c.verification is not None:
            v = c.verification
            code = {"confirmed": "32", "partial": "33", "not confirmed": "31"}[v.verdict]
            out.append(f"{pad}  {' ' * 11}{p(code, f'verified: {v.verdict}')}  {v.summary} ({v.cost_s:.1f} s)")
            if v.diff:  # a few lines, and the one thing to copy: shown in full
                out.append(f"{pad}  {' ' * 11}{p('2', 'suggested change (not applied):')}")
                for line in v.diff.splitlines():
                    tint = "32" if line.startswith("+") else "31" if line.startswith("-") else "2"
                    out.append(f"{pad}  {' ' * 13}{p(tint, line)}")
    return out


def render_text(report: Report, *, color: bool = False, verbose: bool = False) -> str:
    """Render `report` for a terminal; ANSI colour only when `color` is true."""
    p = _Paint(color)
    findings = values.ordered(report.headlines())
    lines: list[str] = []
    title = f"doctor {report.version}".rstrip() + (f" — {values.short_path(report.target)}" if report.target else "")
    lines.append(p("1", title))
    s = report.setup
    parts = [x for x in (s.model_class, s.task, s.loss, s.optimizer, f"batch {s.batch_size}" if s.batch_size else "") if x]
    setup = ", ".join(parts + [s.device])
    if parts:  # a bare "cpu" says nothing when the target never loaded
        lines.append(p("2", f"setup: {setup}"))
    if s.defaults_used:
        lines.append(p("2", "defaults: " + "; ".join(s.defaults_used)))
    if deploy.line(s.deploy):
        lines.append(p("2", "deploy: " + deploy.line(s.deploy)))
    spent = verified.cost(report.metrics)
    if spent is not None:
        lines.append(p("2", f"--verify-fixes: {verified.cost_sentence(spent)}"))
    lines.append("")
    if findings:
        widths = (max(len(f.rule) for f in findings), min(48, max(len(_where(f)) for f in findings)))
        for f in findings:
            lines += _finding(f, widths, p, verbose)
            for c in report.consequences(f.rule):  # counted once: under their cause, not as headlines
                lines.append(f"{' ' * 9}{p('2', 'consequence:')} {p('1', c.rule)}  {c.message}")
            lines.append("")
    else:
        lines += ["No findings." if report.status.value != "failed" else "No findings (the check did not complete).", ""]

    probes = report.probes
    if probes:
        ran = [x for x in probes if x.status == ProbeStatus.ran]
        lines.append(p("1", "Probes"))
        if verbose:
            show = probes
        else:
            show = [x for x in probes if x.status != ProbeStatus.ran]
            if ran:
                lines.append(f"  {p(_PROBE['ran'], 'ran'.ljust(7))}  " + ", ".join(f"{x.name} ({values.duration(x.duration_s)})" for x in ran))
        by_reason: dict[tuple, int] = {}
        for x in show:
            if x.reason and not x.duration_s and not x.location:
                by_reason[(x.status, x.reason)] = by_reason.get((x.status, x.reason), 0) + 1
        folded: set[tuple] = set()
        for x in show:
            key = (x.status, x.reason)
            if not verbose and by_reason.get(key, 0) >= _FOLD:  # 21 lines of "skipped: --static" say one thing
                if key not in folded:
                    folded.add(key)
                    lines.append(f"  {p(_PROBE[x.status.value], x.status.value.ljust(7))}  "
                                 f"{by_reason[key]} probes: {x.reason} (-v lists them)")
                continue
            st = p(_PROBE[x.status.value], x.status.value.ljust(7))
            took = f" ({values.duration(x.duration_s)})" if x.duration_s else ""
            reason = x.reason or ", ".join(x.measures)
            loc = f" ({x.location})" if x.location else ""
            lines.append(f"  {st}  {x.name}{took}" + (f": {reason}{loc}" if reason or loc else ""))
        lines.append("")

    errors = [e for e in report.errors if verbose or not e.duplicate]
    if errors:
        explained = all(e.explained_by for e in errors)
        lines.append(p("1", "Crashes explained above" if explained else "Errors"))
        for e in errors:
            if e.explained_by:  # the finding above is the diagnosis; this says what raised, briefly
                lines.append(f"  {p('2', 'crash')}" + (f" [{e.probe}]" if e.probe else "")
                             + f": {values.short_path(e.file).join(e.message.split(e.file)) if e.file else e.message}"
                             + p("2", f"  (see {e.explained_by})"))
                if verbose and e.traceback:
                    lines += ["    " + t for t in e.traceback.rstrip().splitlines()]
                continue
            where = values.fileline(e.file, e.line)
            message = e.message.replace(e.file, values.short_path(e.file)) if e.file else e.message
            if where and where in message:  # the message already says where; once is enough
                where = ""
            lines.append(f"  {p('31;1', e.kind)}" + (f" [{e.probe}]" if e.probe else "") + (f" {where}" if where else "") + f": {message}")
            if e.hint:
                lines.append(f"    hint: {e.hint}")
            if verbose and e.traceback:
                lines += ["    " + t for t in e.traceback.rstrip().splitlines()]
        lines.append("")

    lines += _silenced(report, p)

    c = report.counts()
    pc = {st: sum(1 for x in probes if x.status == st) for st in ProbeStatus}
    summary = (
        f"{values.plural(c['error'], 'error')}, {values.plural(c['warning'], 'warning')}, {c['info']} info — "
        f"{values.plural(pc[ProbeStatus.ran], 'probe')} ran, {pc[ProbeStatus.skipped]} skipped"
        + (f", {pc[ProbeStatus.failed]} failed" if pc[ProbeStatus.failed] else "")
        + f" (took {report.duration_s:.1f} s)"
    )
    if report.status.value == "failed":
        summary = "FAILED: " + summary
    code = "31;1" if c["error"] or report.status.value == "failed" else "33;1" if c["warning"] else "32"
    lines.append(p(code, summary))
    return "\n".join(lines) + "\n"


def _silenced(report: Report, p: _Paint) -> list[str]:
    """Suppressed findings, notes on suppression comments, and the baseline comparison."""
    lines: list[str] = []
    if report.suppressed:
        lines.append(p("1", f"Suppressed ({len(report.suppressed)})"))
        for f in report.suppressed:
            where = values.subject(f.location)
            lines.append(f"  {f.rule}" + (f" {where}" if where else "") + f"  by # doctor: ignore at {f.suppressed_by}")
        lines.append("")
    if report.unused_suppressions:
        lines.append(p("1", "Notes"))
        lines += [f"  {s.file}:{s.line}: {s.problem}" for s in report.unused_suppressions]
        lines.append("")
    b = report.baseline
    if b is not None:
        if b.written:
            lines.append(p("1", f"Baseline {b.file}: recorded {b.known} finding{'s' if b.known != 1 else ''}"))
        else:
            lines.append(p("1", f"Baseline {b.file}: {b.known} known (not failing), {b.new} new, "
                                f"{len(b.absent)} no longer occur"))
            lines += [f"  gone: {e.rule}" + (f" {e.subject}" if e.subject else "") for e in b.absent]
            if b.absent:
                lines.append("  (run with --write-baseline to drop them)")
        lines.append("")
    return lines
