"""What a verified fix looks like in a report: its before/after curves, its suggested diff, and the cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from doctor.metrics import Metrics, Series
from doctor.render import charts
from doctor.report import FixCheck

# The curve each kind of headline is drawn from, and its title; a fix's own curves (a loss swap's
# validation score) come first, else the training loss of the burst re-run with the fix.
TITLES = {"fix.val_accuracy": "Validation accuracy", "fix.val_auc": "Validation ROC AUC (mean per label)",
          "loss.train": "Training loss"}
Y_RANGES = {"fix.val_accuracy": (0.0, 1.0), "fix.val_auc": (0.0, 1.0)}
BEFORE, AFTER = "as it was", "with the fix"


@dataclass
class Curves:
    name: str
    title: str
    before: Series
    after: Series


@dataclass
class DiffLine:
    kind: str  # "file", "hunk", "add", "del", "ctx"
    text: str


@dataclass
class Cost:
    fixes: int
    seconds: float
    check_s: float
    kinds: list[str] = field(default_factory=list)


def curves(metrics: Optional[Metrics], fc: FixCheck) -> Optional[Curves]:
    """The two curves to draw for this fix, or None when the fix measured no curve (drop-last's yes/no)."""
    if metrics is None:
        return None
    v = next((v for v in metrics.verifications if v.request.fix == fc.fix), None)
    if v is None:
        return None
    for name, before in v.baseline_series.items():
        if name in v.series:
            return Curves(name, TITLES.get(name, name), before, v.series[name])
    if "loss.train" in v.series and "loss.train" in metrics.series:
        return Curves("loss.train", TITLES["loss.train"], metrics.series["loss.train"], v.series["loss.train"])
    return None


def log_axis(c: Curves) -> bool:
    """A loss whose positive values span three decades (a diverging run beside a converging one) reads on a log axis;
    a loss of exactly 0 (float32 cross-entropy on saturated logits) is then left off, not allowed to forbid it."""
    if c.name in Y_RANGES:
        return False
    positive = [y for y in c.before.y + c.after.y if charts.is_finite(y) and y > 0]
    return charts.spans_decades(positive, charts.CURVE_LOG_SPAN)


def chart(c: Curves, fix: str) -> str:
    """One SVG line chart: the curve as it was and with the fix, on one axis."""
    log = log_axis(c)
    before, after = (s.model_copy(update={"log_y": True}) if log else s for s in (c.before, c.after))
    return charts.line_chart([(BEFORE, before), (f"{AFTER} ({fix})", after)], f"{c.title}: before and after",
                             y_range=Y_RANGES.get(c.name))


def diff_lines(diff: str) -> list[DiffLine]:
    out = []
    for line in diff.splitlines():
        kind = ("file" if line.startswith(("--- ", "+++ ")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
        out.append(DiffLine(kind, line))
    return out


def cost(metrics: Optional[Metrics]) -> Optional[Cost]:
    """How long verification took, beside the check itself (the collector's time before it)."""
    if metrics is None or not metrics.verifications:
        return None
    tried = [v for v in metrics.verifications if not v.not_applicable]
    seconds = sum(v.duration_s for v in metrics.verifications)
    return Cost(fixes=len(tried), seconds=seconds, check_s=metrics.duration_s,
                kinds=[v.request.fix for v in tried])


def cost_sentence(c: Cost) -> str:
    return (f"Verifying {c.fixes} fix{'es' if c.fixes != 1 else ''} ({', '.join(c.kinds) or 'none applicable'}) "
            f"took {c.seconds:.1f} s, beside {c.check_s:.1f} s for the check itself.")
