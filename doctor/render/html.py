"""The self-contained HTML report: inline CSS and SVG charts, nothing fetched, no JavaScript."""

from __future__ import annotations

from markupsafe import Markup

from doctor.metrics import CATALOGUE, ProbeStatus
from doctor.render import deploy, figures, locate, values, verified
from doctor.render.templating import environment, read_asset
from doctor.report import Finding, Report

CAUSE_LABEL = {"supported": "supported", "possible": "possible", "unknown": "not measured", "ruled_out": "ruled out"}


def _check_view(c, metrics) -> dict:
    """A verified cause's before/after chart and suggested diff, ready for the template."""
    fc = c.verification
    drawn = verified.curves(metrics, fc)
    return {"svg": Markup(verified.chart(drawn, fc.fix)) if drawn else None,  # charts.py escapes what it writes
            "diff": verified.diff_lines(fc.diff),
            "file": locate.rel(fc.edits[0].file) if fc.edits else ""}


def _finding_view(f: Finding, i: int, series: dict, cache: dict, metrics=None) -> dict:
    figs, missing = figures.figures(f.charts, series, cache)
    return {
        "checks": {c.id: _check_view(c, metrics) for c in f.causes if c.verification is not None},
        "f": f,
        "id": f"finding-{i + 1}",
        "figures": [(fig, Markup(fig.svg)) for fig in figs],  # charts.py escapes everything it writes
        "missing": missing,
        "causes": [c for c in f.causes if c.status != "ruled_out"],
        "ruled_out": [c for c in f.causes if c.status == "ruled_out"],
        "fileline": values.fileline(f.location.file, f.location.line),
        "subject": values.subject(f.location),
    }


def render_html(report: Report) -> str:
    """Render `report` as one HTML page that opens offline."""
    metrics = report.metrics
    series = metrics.series if metrics else {}
    cache: dict = {}
    findings = [_finding_view(f, i, series, cache, metrics) | {"consequences": report.consequences(f.rule)}
                for i, f in enumerate(values.ordered(report.headlines()))]
    measured, _ = figures.figures(figures.all_names(series), series, cache)
    probes, errors = report.probes, report.errors  # the Report's, so every format counts the same
    probe_counts = {s.value: sum(1 for p in probes if p.status == s) for s in ProbeStatus}
    text_columns = {k for v in (metrics.layers.values() if metrics else []) for k, x in v.items()
                    if isinstance(x, (str, bool))}
    tmpl = environment(True).get_template("html/report.html.j2")
    return tmpl.render(
        r=report,
        counts=report.counts(),
        findings=findings,
        measured=[(fig, Markup(fig.svg)) for fig in measured],
        probes=probes,
        probe_counts=probe_counts,
        errors=errors,
        scalars=sorted(metrics.scalars.items()) if metrics else [],
        catalogue=CATALOGUE,
        # Numbers first, right-aligned; yes/no and named facts (e.g. the init reference) after them.
        layer_columns=sorted({k for v in (metrics.layers.values() if metrics else []) for k in v},
                             key=lambda c: (c in text_columns, c)),
        layer_text_columns=text_columns,
        layers=metrics.layers if metrics else {},
        layer_types=metrics.layer_types if metrics else {},
        seed=metrics.seed if metrics else None,
        budget=metrics.budget if metrics else None,
        cause_label=CAUSE_LABEL,
        deploy_rows=deploy.rows(report.setup.deploy),
        verify_cost=(lambda c: verified.cost_sentence(c) if c else "")(verified.cost(metrics)),
        fileline=values.fileline,
        css=Markup(read_asset("html/report.css")),
    )
