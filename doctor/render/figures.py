"""Which charts a list of series names becomes: pairing, titles, scales, thresholds, reference labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from doctor.metrics import SERIES, Series
from doctor.render import charts

# Curves read together: a validation loss means little without the training loss beside it.
GROUPS: dict[str, tuple[str, ...]] = {
    "loss": ("loss.train", "loss.val", "loss.train_eval"),
    "acc": ("acc.train", "acc.val"),
}
LEGEND = {
    "loss.train": "train",
    "loss.val": "validation",
    "loss.train_eval": "train (eval mode)",
    "acc.train": "train",
    "acc.val": "validation",
    "grad.total_norm": "global norm",
}
TITLES = {
    "loss": "Loss",
    "acc": "Accuracy",
    "grad.norm_by_layer": "Gradient norm by layer",
    "grad.rms_by_layer": "RMS gradient by layer",
    "grad.total_norm": "Global gradient norm",
    "act.dead_frac_by_layer": "Dead units by layer",
    "act.saturated_frac_by_layer": "Saturated outputs by layer",
    "data.class_counts": "Training samples per class",
    "data.feature_std": "Input scale by feature",
    "init.loss": "Initial loss against expected",
    "data.shift_smd_by_feature": "Train/validation shift by feature",
    "data.order_batch_majority": "Largest class share per batch, in loader order",
    "data.loader_timing": "Waiting for data against computing",
    "lr.range": "Learning-rate range test",
    "ovf.loss": "Overfitting one batch",
    "upd.ratio_by_layer": "Update/weight ratio by layer",
    "pred.class_counts": "Predicted class counts",
}
Y_RANGES = {"acc": (0.0, 1.0)}  # accuracy reads against the whole 0..1 scale
THRESHOLDS = {"act.dead_frac_by_layer": 0.5, "act.saturated_frac_by_layer": 0.5}
# Per-layer gradients span decades in any deep net; a linear axis would show one bar and zeros.
FORCE_LOG = {"grad.norm_by_layer", "grad.rms_by_layer", "data.feature_std"}


@dataclass
class Figure:
    key: str
    title: str
    members: list[str]
    svg: str = ""
    notes: list[str] = field(default_factory=list)


def reference_label(name: str, value: float) -> str:
    """'expected ln(10)=2.30' when a loss reference is the log of a class count."""
    if name.startswith(("loss.", "init.")):
        k = round(math.exp(value)) if value < 20 else 0
        if k >= 2 and abs(math.log(k) - value) < 1e-3:
            return f"expected ln({k})={value:.2f}"
        return f"expected {charts.fmt(value)}"
    return f"reference {charts.fmt(value)}"


def is_numeric(s: Series) -> bool:
    """A curve over numbers (steps, learning rates) rather than values over named categories."""
    return bool(s.x) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in s.x)


def plan(names: list[str], available: dict[str, Series]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Group series names into charts, each name drawn once; also return the names not measured."""
    groups: list[tuple[str, list[str]]] = []
    used: set[str] = set()
    missing: list[str] = []
    for name in names:
        if name in used:
            continue
        if name not in available:
            missing.append(name)
            used.add(name)
            continue
        key = next((k for k, members in GROUPS.items() if name in members), name)
        members = [m for m in GROUPS.get(key, (name,)) if m in available and m not in used]
        used.update(members)
        groups.append((key, members))
    return groups, missing


def draw(key: str, members: list[str], available: dict[str, Series]) -> str:
    """The SVG for one planned chart."""
    title = TITLES.get(key, key)
    first = available[members[0]]
    if is_numeric(first):
        lines = [(LEGEND.get(m, m), available[m]) for m in members if is_numeric(available[m])]
        ref = next((s.reference for _, s in lines if s.reference is not None), None)
        label = reference_label(members[0], ref) if ref is not None and math.isfinite(ref) else None
        return charts.line_chart(lines, title, reference_label=label, y_range=Y_RANGES.get(key))
    thr = THRESHOLDS.get(key)
    # Fractions compared with a threshold read on a linear 0..1 axis, whatever their spread.
    log = True if key in FORCE_LOG else False if thr is not None else None
    label = None
    if thr is None and first.reference is not None and math.isfinite(first.reference):
        label = reference_label(key, first.reference)
    return charts.bar_chart(first, title, thr, threshold_label=label, log=log)


def figures(names: list[str], available: dict[str, Series], cache: Optional[dict] = None) -> tuple[list[Figure], list[str]]:
    """Charts for `names`, and the names that were not measured; `cache` shares drawings across calls."""
    groups, missing = plan(names, available)
    cache = {} if cache is None else cache
    out = []
    for key, members in groups:
        ck = (key, tuple(members))
        if ck not in cache:  # the same loss curve is often charted by several findings
            cache[ck] = draw(key, members, available)
        out.append(Figure(key, TITLES.get(key, key), members, cache[ck]))
    return out, missing


def all_names(available: dict[str, Series]) -> list[str]:
    """Every measured series, catalogue order first, so 'What was measured' reads the same each time."""
    known = [n for n in SERIES if n in available]
    return known + sorted(n for n in available if n not in SERIES)
