"""Read a finished run's TensorBoard logs into Metrics (`doctor check --logdir RUN_DIR`): no model, no torch.

Scalar tags are matched by their words, so the common spellings all work: `loss/train`,
`train/loss`, `train_loss`, `Loss/train`, `loss` (training), `val/loss`, `loss/val`, `val_loss`,
`eval/loss`, `validation/loss`, `acc/val`, `val_accuracy`, `train/acc`, ... A run folder's name
counts too (Keras writes `epoch_loss` under `train/` and `validation/`). A tag with any other word
in it (`loss/kl`, `train/aux_loss`, `test/loss`) is a different quantity and is left alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from doctor import curves
from doctor.catalogue import CATALOGUE
from doctor.catalogue.run import PROBE
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus, Series, SetupInfo

TRAIN = {"train", "training"}
VAL = {"val", "valid", "validation", "eval", "evaluation", "dev"}
QUANTITY = {"loss": "loss", "acc": "acc", "accuracy": "acc"}
# Words that qualify a tag without changing what it measures.
NEUTRAL = {"epoch", "step", "steps", "batch", "avg", "mean", "total", "running", "smooth", "smoothed"}
ROLES = ("loss.train", "loss.val", "acc.train", "acc.val")
MAX_POINTS = 4000  # longer curves are reduced to bucket medians for the spike and rise statistics
CHART_POINTS = 1000  # and to this many points for the report's charts


class LogdirError(Exception):
    """No usable TensorBoard logs at the path: exit 2 with this message."""


@dataclass
class Curve:
    run: str  # folder relative to the log dir ("." for the top)
    tag: str
    steps: list[int]
    values: list[float]

    @property
    def label(self) -> str:
        return self.tag if self.run == "." else f"{self.run}/{self.tag}"


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[/_.\-\s]+", text.lower()) if w]


def role(run: str, tag: str) -> Optional[str]:
    """Which series a tag is ('loss.train', 'acc.val', ...), or None for anything else."""
    words = _words(tag)
    quantity = {QUANTITY[w] for w in words if w in QUANTITY}
    if len(quantity) != 1:
        return None
    splits = {"train" if w in TRAIN else "val" for w in words if w in TRAIN | VAL}
    extra = [w for w in words if w not in QUANTITY and w not in TRAIN | VAL and w not in NEUTRAL]
    if extra or len(splits) > 1:
        return None
    if not splits:
        run_words = set(_words(run))
        splits = {"train" if w in TRAIN else "val" for w in run_words if w in TRAIN | VAL}
        if len(splits) > 1:
            return None
    split = next(iter(splits)) if splits else "train"  # a bare `loss` is the training loss
    return f"{quantity.pop()}.{split}"


def _event_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*tfevents*") if p.is_file()})


def read_curves(root: Path) -> list[Curve]:
    """Every scalar curve under `root` (simple values and TF2-style scalar tensors), one per (run, tag)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    out = []
    for d in _event_dirs(root):
        acc = ea.EventAccumulator(str(d), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
        try:
            acc.Reload()
        except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's data, not our bug
            raise LogdirError(f"--logdir {root}: cannot read the event files in {d} ({exc})") from None
        run = d.relative_to(root).as_posix() or "."
        tags = acc.Tags()
        points: dict[str, dict[int, float]] = {}
        for tag in tags.get(ea.SCALARS, []):
            for e in acc.Scalars(tag):
                points.setdefault(tag, {})[int(e.step)] = float(e.value)
        for tag in tags.get(ea.TENSORS, []):
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            for e in acc.Tensors(tag):
                arr = tensor_util.make_ndarray(e.tensor_proto)
                if arr.size == 1:
                    points.setdefault(tag, {})[int(e.step)] = float(arr.reshape(()))
        for tag, by_step in points.items():  # a resumed run logs some steps twice: the later value wins
            steps = sorted(by_step)
            out.append(Curve(run=run, tag=tag, steps=steps, values=[by_step[s] for s in steps]))
    return out


def _pick(curves_: list[Curve]) -> dict[str, Curve]:
    """One curve per role: the one with the most points (per-step beats per-epoch), then by name."""
    chosen: dict[str, Curve] = {}
    runs: dict[str, set[str]] = {}
    for c in sorted(curves_, key=lambda c: (-len(c.steps), c.label)):
        r = role(c.run, c.tag)
        if r is None:
            continue
        runs.setdefault(r, set()).add(c.run)
        chosen.setdefault(r, c)
    for r, where in runs.items():
        if len(where) > 1:  # two experiments side by side: judging a mix of them would be nonsense
            raise LogdirError(f"several runs log {r}: {', '.join(sorted(where))}; point --logdir at one of them")
    return chosen


def _buckets(steps: list[int], values: list[float], n: int) -> tuple[list[int], list[float]]:
    """At most n points: bucket medians (a non-finite value in a bucket is kept as NaN, so it shows)."""
    if len(values) <= n:
        return steps, values
    import numpy as np  # noqa: PLC0415

    k = math.ceil(len(values) / n)
    a = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    xs = [steps[min(i + k, len(steps)) - 1] for i in range(0, len(values), k)]
    whole = len(a) // k
    chunks = [a[: whole * k].reshape(whole, k)] + ([a[whole * k:].reshape(1, -1)] if len(a) % k else [])
    ys: list[float] = []
    for c in chunks:  # the upper median of each bucket, NaN where a bucket holds a non-finite value
        mid = np.sort(c, axis=1)[:, c.shape[1] // 2]
        ys.extend(np.where(np.isfinite(c).all(axis=1), mid, math.nan).tolist())
    return xs, ys


def run_scalars(train_steps: Optional[list[int]], train: Optional[list[float]],
                val_steps: Optional[list[int]], val: Optional[list[float]]) -> dict:
    """The scalars a run's loss curves give the rules (a logged run's, or a live one's under doctor.watch)."""
    sc: dict = {}
    train_ref = None
    if train is not None and train_steps:
        bad = curves.first_nonfinite(train)
        sc["train.steps"] = train_steps[-1]
        sc["run.points"] = len(train)
        sc["run.last_step"] = train_steps[-1]
        sc["loss.first_nonfinite_step"] = train_steps[bad] if bad >= 0 else -1
        sc.update(curves.train_stats(train))
        if bad < 0 and len(train) >= curves.MIN_POINTS:
            train_ref = curves.head_tail(train)[1]
            _, reduced = _buckets(train_steps, train, MAX_POINTS)
            sc.update(curves.rise_stats(reduced))
            sc.update(curves.spike_stats(reduced))
    if val is not None and val_steps:
        sc.update(curves.val_stats(val, train_ref))
        if train is not None and train_steps:
            # The gap test the overfitting rule reads: validation against the training loss at the
            # first logged training step at or after it (a run log has no eval-mode training loss).
            from bisect import bisect_left  # noqa: PLC0415

            def train_at(step: int) -> float:
                i = min(bisect_left(train_steps, step), len(train_steps) - 1)
                return train[i]

            sc.update(curves.gap_tests(val, [train_at(s) for s in val_steps]))
    return sc


def to_metrics(root: Path, found: list[Curve]) -> Metrics:
    """The Metrics the rules read, from the curves of one run."""
    try:
        chosen = _pick(found)
    except LogdirError as exc:
        raise LogdirError(f"--logdir {root}: {exc}") from None
    if "loss.train" not in chosen and "loss.val" not in chosen:
        seen = ", ".join(sorted(c.label for c in found)[:20]) or "none"
        raise LogdirError(
            f"--logdir {root}: no training or validation loss among the scalar tags ({seen}); "
            "doctor reads tags such as loss/train, train/loss, train_loss, loss, val/loss, loss/val, val_loss")
    m = Metrics(target=str(root), budget="logdir", setup=SetupInfo(target=str(root)))
    sc = m.scalars
    for r, c in chosen.items():
        xs, ys = _buckets(c.steps, c.values, CHART_POINTS)
        label = "accuracy" if r.startswith("acc") else "loss"
        m.series[r] = Series(x=xs, y=ys, y_label=label, x_label="step")
    train, val = chosen.get("loss.train"), chosen.get("loss.val")
    sc.update(run_scalars(train.steps if train else None, train.values if train else None,
                          val.steps if val else None, val.values if val else None))
    if "acc.train" in chosen and "acc.val" in chosen:
        sc.update(curves.acc_stats(chosen["acc.train"].values[-1], chosen["acc.val"].values[-1]))
    m.setup.notes = [f"{r} from `{c.label}` ({len(c.steps)} points)" for r, c in sorted(chosen.items())]
    m.probes.append(ProbeRecord(name=PROBE, status=ProbeStatus.ran,
                                measures=[f"{r} <- {c.label}" for r, c in sorted(chosen.items())]))
    # Every other probe needs the model: say so, so rules that need them read as skipped with that reason.
    for probe in sorted({d.probe for d in CATALOGUE.values()} - {PROBE}):
        m.probes.append(ProbeRecord(name=probe, status=ProbeStatus.skipped,
                                    reason="judging TensorBoard logs: no model or data to measure"))
    return m


def read(root: Path) -> Metrics:
    """Metrics from the TensorBoard logs under `root`."""
    if not root.is_dir():
        raise LogdirError(f"--logdir {root}: not a directory")
    if not _event_dirs(root):
        raise LogdirError(f"--logdir {root}: no TensorBoard event files (events.out.tfevents.*) under it")
    return to_metrics(root, read_curves(root))
