"""TensorBoard scalars of a live run, under the tags `doctor check --logdir` reads back (loss/train, ...)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any


class Writer:
    """One event file under `logdir`, written at each read of the device buffers (never per step)."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415

        logdir.mkdir(parents=True, exist_ok=True)
        self._w = EventFileWriter(str(logdir), filename_suffix=".doctor-watch")

    def scalar(self, tag: str, step: int, value: float) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: PLC0415

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
        self._w.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def window(self, steps: list[int], sampled: list[int], data: dict[str, Any]) -> None:
        """A buffer's worth: the loss per step, the global gradient norm per sampled step, per-layer values at
        its last step."""
        for s, v in zip(steps, data["losses"]):
            self.scalar("loss/train", s, v)
        for s, v in zip(sampled, data.get("total", [])):
            self.scalar("grad_norm/total", s, v)
        if not steps:
            return
        last = steps[-1]
        for name, col in data.get("layer_norms", {}).items():
            finite = col[col == col]
            if finite.numel():
                self.scalar(f"grad_norm/{name or 'model'}", last, float(finite.median()))
        for name, r in data.get("update_ratio", {}).items():
            self.scalar(f"upd/ratio/{name or 'model'}", last, r)
        for name, row in data.get("acts", {}).items():
            for key in ("act.dead_frac", "act.saturated_frac"):
                if key in row and math.isfinite(row[key]):
                    self.scalar(f"{key.replace('.', '/')}/{name}", last, row[key])

    def findings(self, findings: list) -> None:
        """The findings as a text summary under doctor/findings, as `doctor check --output-dir` writes it."""
        from tensorboard.compat.proto import (  # noqa: PLC0415
            event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2)

        rows = ["| severity | rule | where | message |", "| --- | --- | --- | --- |"] + [
            f"| {f.severity.value} | {f.rule} | {f.location.module or ''} | {f.message.replace('|', '/')} |"
            for f in findings]
        text = "\n".join(rows) if findings else "doctor.watch: no findings"
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="doctor/findings", metadata=meta,
                                                                       tensor=tensor)])
        self._w.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()
