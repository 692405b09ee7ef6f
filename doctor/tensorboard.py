"""Write what doctor measured as TensorBoard event files (`--output-dir DIR` -> DIR/tb), without torch or TF.

Tags follow the conventions people already log under: `loss/train`, `loss/val`, `acc/val`,
`grad_norm/total`, `grad_norm/<layer>`, `act/dead_frac/<layer>`, ...; model-wide scalars as
`<family>/<name>` (`init/loss`), and the findings as a text summary under `doctor/findings`.
Curves are written per step; per-layer and per-class values once, at the last training step.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

from doctor.metrics import Metrics
from doctor.report import Report

SERIES_TAGS = {
    "loss.train": "loss/train",
    "loss.val": "loss/val",
    "loss.train_eval": "loss/train_eval",
    "acc.train": "acc/train",
    "acc.val": "acc/val",
    "grad.total_norm": "grad_norm/total",
}
LAYER_TAGS = {
    "grad.norm": "grad_norm",
    "grad.norm_max": "grad_norm_max",
    "grad.rms": "grad_rms",
    "act.dead_frac": "act/dead_frac",
    "act.saturated_frac": "act/saturated_frac",
    "act.active_frac": "act/active_frac",
}
CLASS_TAGS = {"class.count": "data/class_count", "class.frac": "data/class_frac"}
FINDINGS_TAG = "doctor/findings"


def _tag(name: str) -> str:
    return name.replace(".", "/")


def _number(v: object) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def scalar_events(metrics: Metrics) -> list[tuple[str, int, float]]:
    """(tag, step, value) for everything numeric that doctor measured, curves first."""
    out: list[tuple[str, int, float]] = []
    for name, s in metrics.series.items():
        # Only curves over integer steps; bar charts over layers or classes go in per name below.
        if not s.x or not all(isinstance(x, int) and not isinstance(x, bool) for x in s.x):
            continue
        tag = SERIES_TAGS.get(name, _tag(name))
        out += [(tag, x, y if y is not None else math.nan) for x, y in zip(s.x, s.y)]
    steps = metrics.scalars.get("train.steps")
    at = steps if isinstance(steps, int) and not isinstance(steps, bool) else 0
    for layer, row in metrics.layers.items():
        for name, v in row.items():
            num = _number(v)
            if num is not None:
                out.append((f"{LAYER_TAGS.get(name, _tag(name))}/{layer}", at, num))
    for label, row in metrics.classes.items():
        for name, v in row.items():
            num = _number(v)
            if num is not None:
                out.append((f"{CLASS_TAGS.get(name, _tag(name))}/{label}", at, num))
    for name, v in metrics.scalars.items():
        num = _number(v)
        if num is not None:
            out.append((_tag(name), at, num))
    return out


def _findings_text(report: Report) -> str:
    if not report.findings:
        return f"doctor: {report.status.value}, no findings"
    return findings_table(report.findings)


def findings_table(findings: list) -> str:
    """The findings as the Markdown table TensorBoard's text plugin shows."""
    rows = ["| severity | rule | where | message |", "| --- | --- | --- | --- |"]
    for f in findings:
        where = f.location.module or (f"class {f.location.label}" if f.location.label else "")
        rows.append(f"| {f.severity.value} | {f.rule} | {where} | {f.message.replace('|', '/')} |")
    return "\n".join(rows)


def write_events(report: Report, out_dir: Path) -> Path:
    """Write `report.metrics` (and the findings as text) as one event file under `out_dir`; returns it.

    Event files doctor wrote there before are removed first, so TensorBoard does not draw two runs
    on top of each other.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("events.out.tfevents.*.doctor"):
        old.unlink()
    writer = EventFileWriter(str(out_dir), filename_suffix=".doctor")
    now = time.time()
    try:
        events = scalar_events(report.metrics) if report.metrics is not None else []
        for tag, step, value in events:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(event_pb2.Event(wall_time=now, step=step, summary=summary))
        writer.add_event(text_event(FINDINGS_TAG, _findings_text(report), now))
    finally:
        writer.close()
    return Path(writer._file_name)  # noqa: SLF001 - the writer has no public name for its file


def text_event(tag: str, text: str, wall_time: float, step: int = 0):
    """A TensorBoard text-plugin event holding `text`."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
