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
        from doctor.tensorboard import FINDINGS_TAG, findings_table, text_event  # noqa: PLC0415

        text = findings_table(findings) if findings else "doctor.watch: no findings"
        self._w.add_event(text_event(FINDINGS_TAG, text, time.time()))

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()
