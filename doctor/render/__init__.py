"""Render: a typed Report to text, JSON, Markdown, HTML, SARIF, JUnit XML and GitHub annotations."""

from __future__ import annotations

from pathlib import Path

from doctor.report import Report

FORMATS = ("text", "json", "markdown", "html", "sarif", "junit", "github")


def render(report: Report, fmt: str, *, color: bool = False, verbose: bool = False) -> str:
    """Render `report` in one of FORMATS."""
    # Imported here so `doctor --help` does not pay for Jinja.
    if fmt == "text":
        from doctor.render.text import render_text

        return render_text(report, color=color, verbose=verbose)
    if fmt == "json":
        from doctor.render.jsonout import render_json

        return render_json(report, verbose=verbose)
    if fmt == "markdown":
        from doctor.render.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from doctor.render.html import render_html

        return render_html(report)
    if fmt == "sarif":
        from doctor.render.sarif import render_sarif

        return render_sarif(report)
    if fmt == "junit":
        from doctor.render.junit import render_junit

        return render_junit(report)
    if fmt == "github":
        from doctor.render.github import render_github

        return render_github(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


OUTPUT_FILES = (("report.html", "html"), ("report.md", "markdown"), ("report.json", "json"),
                ("report.sarif", "sarif"), ("junit.xml", "junit"))


def write_outputs(report: Report, out_dir: Path, *, tensorboard: bool = True) -> list[Path]:
    """Write every report file, metrics.json (with metrics) and TensorBoard events under `out_dir/tb`."""
    from doctor.render.jsonout import metrics_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fmt in OUTPUT_FILES:
        path = out_dir / name
        path.write_text(render(report, fmt), encoding="utf-8")
        written.append(path)
    if report.metrics is not None:
        path = out_dir / "metrics.json"
        path.write_text(metrics_json(report), encoding="utf-8")
        written.append(path)
        if tensorboard:
            from doctor.tensorboard import write_events

            write_events(report, out_dir / "tb")
            written.append(out_dir / "tb")
    return written
