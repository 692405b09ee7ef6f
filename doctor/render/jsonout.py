"""The JSON report (schema_version 1), serialised from the typed Report, never from a template."""

from __future__ import annotations

import json
import math
from typing import Any

from doctor.metrics import ProbeStatus
from doctor.render import values
from doctor.report import REPORT_SCHEMA_VERSION, Report


def finite_json(obj: Any) -> Any:
    # JSON has no NaN or Infinity; a NaN loss is itself evidence, so keep it readable as a string
    # ("nan", "inf", "-inf") rather than collapse it to null.
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_json(v) for v in obj]
    return obj


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain data: findings most severe first, counts added, metrics left out."""
    ordered = report.model_copy(update={"findings": values.ordered(report.findings)})
    data = ordered.model_dump(mode="json")
    data["schema_version"] = REPORT_SCHEMA_VERSION
    data["counts"] = report.counts()
    data["probe_counts"] = {s.value: sum(1 for p in report.probes if p.status == s) for s in ProbeStatus}
    data["suppressed_count"] = len(report.suppressed)
    # Stable, reader-friendly key order: identity and verdict first, detail after.
    head = ["schema_version", "tool", "version", "status", "target", "fail_on", "duration_s", "counts", "probe_counts", "suppressed_count"]
    out = {k: data[k] for k in head if k in data}
    out.update((k, v) for k, v in data.items() if k not in out)
    return finite_json(out)


def render_json(report: Report, *, verbose: bool = False) -> str:
    """Render `report` as indented JSON text; the collector's traceback only with -v, like the terminal."""
    data = report_dict(report)
    if not verbose:
        for error in data.get("errors", []):
            error.pop("traceback", None)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def metrics_json(report: Report) -> str:
    """The Metrics behind the report, exactly as the collector writes it, so the judge can re-read it."""
    assert report.metrics is not None
    return report.metrics.model_dump_json(indent=2) + "\n"
