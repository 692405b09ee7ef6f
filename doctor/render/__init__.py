"""Render: a typed Report to text, JSON, Markdown and HTML."""

from __future__ import annotations

from pathlib import Path

from doctor.report import Report

FORMATS = ("text", "json", "markdown", "html")


def render(report: Report, fmt: str, *, color: bool = False, verbose: bool = False) -> str:
    """Render `report` in one of FORMATS."""
    # Imported here so `doctor --help` does not pay for Jinja.
    if fmt == "text":
        from doctor.render.text import render_text

        return render_text(report, color=color, verbose=verbose)
    if fmt == "json":
        from doctor.render.jsonout import render_json

        return render_json(report)
    if fmt == "markdown":
        from doctor.render.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from doctor.render.html import render_html

        return render_html(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_outputs(report: Report, out_dir: Path) -> list[Path]:
    """Write report.html, report.md, report.json and (with metrics) metrics.json under `out_dir`."""
    from doctor.render.jsonout import metrics_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fmt in (("report.html", "html"), ("report.md", "markdown"), ("report.json", "json")):
        path = out_dir / name
        path.write_text(render(report, fmt), encoding="utf-8")
        written.append(path)
    if report.metrics is not None:
        path = out_dir / "metrics.json"
        path.write_text(metrics_json(report), encoding="utf-8")
        written.append(path)
    return written
