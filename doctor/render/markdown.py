"""The Markdown report: tables, unicode sparklines for curves, details blocks; no images, under 1 MiB."""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

from doctor.metrics import ProbeStatus, Series
from doctor.render import charts, deploy, figures, locate, values, verified
from doctor.render.charts import fmt, is_finite
from doctor.render.templating import environment
from doctor.report import Report

BARS = "▁▂▃▄▅▆▇█"
MAX_BYTES = 1 << 20  # GitHub truncates comments and step summaries near this size
MAX_ROWS = 200
MAX_TRACE = 4000


def sparkline(ys: Sequence[Optional[float]], *, log: bool = False, width: int = 48,
              lo: Optional[float] = None, hi: Optional[float] = None) -> str:
    """One character per value (or per bucket of values); '×' marks NaN, inf or null, ' ' zero on a log scale.

    `lo` and `hi` fix the scale (two curves read against each other share one); by default it is this curve's own.
    """
    if not ys:
        return ""
    k = max(1, math.ceil(len(ys) / width))
    cells: list[Optional[float] | str] = []
    for i in range(0, len(ys), k):
        chunk = ys[i : i + k]
        good = [v for v in chunk if is_finite(v) and (v > 0 or not log)]
        if good:
            m = sum(good) / len(good)
            cells.append(math.log10(m) if log else m)
        elif any(not is_finite(v) for v in chunk):
            # None counts too: NaN goes through JSON (metrics.json) as null.
            cells.append("×")
        else:
            cells.append(None)
    nums = [c for c in cells if isinstance(c, float) or isinstance(c, int)]
    own_lo, own_hi = (min(nums), max(nums)) if nums else (0.0, 0.0)
    if lo is not None and hi is not None and (not log or (lo > 0 and hi > 0)):
        own_lo, own_hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
    lo, hi = own_lo, own_hi
    out = []
    for c in cells:
        if c is None:
            out.append(" ")
        elif isinstance(c, str):
            out.append(c)
        else:
            level = min(max((c - lo) / (hi - lo), 0.0), 1.0) if hi > lo else None
            out.append(BARS[int(level * (len(BARS) - 1) + 0.5)] if level is not None else BARS[3])
    return "".join(out)


def _plural(label: str) -> str:
    """'layer (forward order)' -> 'layers (forward order)', 'class' -> 'classes'."""
    word, sep, rest = label.partition(" (")
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        word = word[:-1] + "ies"
    else:
        word += "es" if word.endswith(("s", "x", "ch")) else "s"
    return word + sep + rest


def _summary(name: str, s: Series) -> str:
    pts = [(x, y) for x, y in zip(s.x, s.y) if is_finite(y)]
    if not pts:
        return "no finite values"
    ys = [y for _, y in pts]
    bad = sum(1 for y in s.y if not is_finite(y))
    numeric = figures.is_numeric(s)
    if numeric:
        text = f"{fmt(ys[0])} → {fmt(ys[-1])}, min {fmt(min(ys))} over {len(s.y)} {_plural(s.x_label or 'point')}"
    else:
        top = max(pts, key=lambda p: p[1])
        low = min(pts, key=lambda p: p[1])
        text = f"{fmt(low[1])} ({low[0]}) … {fmt(top[1])} ({top[0]}) over {len(s.x)} {_plural(s.x_label or 'category')}"
    if bad:
        text += f", {bad} non-finite"
    if s.reference is not None and math.isfinite(s.reference):
        text += f"; {figures.reference_label(name, s.reference)}"
    return text


def _sparks(key: str, members: list[str], series: dict[str, Series], tabled: set[str], cache: dict) -> dict:
    """A chart as text: one sparkline row per curve, and its values for a details table."""
    ck = (key, tuple(members))
    if ck in cache:  # several findings often chart the same long loss curve
        return {**cache[ck], "table": None}
    rows = []
    log_forced = key in figures.FORCE_LOG
    for m in members:
        s = series[m]
        # The same axis choice as the HTML chart of this series.
        ratio = charts.CURVE_LOG_SPAN if figures.is_numeric(s) else charts.LOG_SPAN
        log = s.log_y or log_forced or (key not in figures.Y_RANGES and key not in figures.THRESHOLDS and charts.spans_decades(s.y, ratio))
        rows.append({"label": figures.LEGEND.get(m, m), "spark": sparkline(s.y, log=log), "summary": _summary(m, s) + (" (log scale)" if log else "")})
    width = max(len(r["label"]) for r in rows)
    for r in rows:
        r["label"] = r["label"].ljust(width)
    first = series[members[0]]
    table = None
    if not figures.is_numeric(first) and key not in tabled:  # each values table once per report
        tabled.add(key)
        thr = figures.THRESHOLDS.get(key)
        table = {
            "x_label": first.x_label or "name",
            "y_label": first.y_label or "value",
            "rows": [(str(x), fmt(y) if y is not None else "n/a", thr is not None and is_finite(y) and y > thr) for x, y in zip(first.x, first.y)][:MAX_ROWS],
            "more": max(0, len(first.x) - MAX_ROWS),
            "threshold": thr,
        }
    cache[ck] = {"title": figures.TITLES.get(key, key), "rows": rows, "table": table}
    return cache[ck]


def _check(fc, metrics) -> dict:
    """A verified fix as text: its before/after curves as two sparkline rows on one scale, and its diff."""
    drawn = verified.curves(metrics, fc)
    chart = None
    if drawn is not None:
        both = [y for y in drawn.before.y + drawn.after.y if is_finite(y)]
        log = verified.log_axis(drawn)
        both = [y for y in both if y > 0] if log else both
        rows = [{"label": label, "spark": sparkline(s.y, log=log, lo=min(both, default=None), hi=max(both, default=None)),
                 "summary": _summary(drawn.name, s) + (" (log scale)" if log else "")}
                for label, s in ((verified.BEFORE, drawn.before), (f"{verified.AFTER} ({fc.fix})", drawn.after))]
        width = max(len(r["label"]) for r in rows)
        for r in rows:
            r["label"] = r["label"].ljust(width)
        chart = {"title": f"{drawn.title}: before and after", "rows": rows, "table": None}
    return {"chart": chart, "file": locate.rel(fc.edits[0].file) if fc.edits else ""}


def render_markdown(report: Report, *, details: bool = True) -> str:
    """Render `report` as GitHub-flavoured Markdown."""
    series = report.metrics.series if report.metrics else {}
    findings = []
    tabled: set[str] = set()
    cache: dict = {}
    for f in values.ordered(report.headlines()):
        groups, missing = figures.plan(f.charts, series)
        findings.append({"f": f, "subject": values.subject(f.location), "charts": [_sparks(k, m, series, tabled, cache) for k, m in groups], "missing": missing,
                         "consequences": report.consequences(f.rule),
                         "checks": {c.id: _check(c.verification, report.metrics) for c in f.causes if c.verification}})
    groups, _ = figures.plan(figures.all_names(series), series)
    probes = report.probes
    text = environment(False).get_template("markdown/report.md.j2").render(
        r=report,
        counts=report.counts(),
        findings=findings,
        measured=[_sparks(k, m, series, tabled, cache) for k, m in groups],
        probes=probes,
        probe_counts={s.value: sum(1 for p in probes if p.status == s) for s in ProbeStatus},
        fileline=values.fileline,
        details=details,
        deploy_rows=deploy.rows(report.setup.deploy),
        verify_cost=(lambda c: verified.cost_sentence(c) if c else "")(verified.cost(report.metrics)),
        max_trace=MAX_TRACE,
    )
    text = re.sub(r"\n{3,}", "\n\n", text)  # template conditionals leave runs of blank lines
    if details and len(text.encode()) > MAX_BYTES:
        return render_markdown(report, details=False)  # drop the value tables rather than be cut off mid-page
    if len(text.encode()) > MAX_BYTES:  # still too long (thousands of findings): cut at a line, and say so
        note = "\n\n_…cut here to stay under GitHub's 1 MiB limit; the HTML and JSON reports have everything._\n"
        cut = text.encode()[: MAX_BYTES - len(note.encode()) - 4].decode("utf-8", errors="ignore")
        text = cut[: cut.rfind("\n")] + note
    return text
