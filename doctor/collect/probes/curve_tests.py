"""Statistical tests on the training burst's curves: plateau, oscillation and divergence, a widening gap.

Runs after the burst on the curves it published (loss.train, loss.val, loss.train_eval); no
training of its own. Trends are Mann-Kendall tests (Kendall's tau against the step, one-sided),
levels are running medians, so one noisy batch decides nothing.
"""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence

from scipy import stats

from doctor.collect.pace import MIN_CURVE_STEPS
from doctor.collect.probes import Probe, SkipProbe
from doctor.curves import gap_tests, rolling_median, trend_p

MIN_POINTS = 12  # a half-curve shorter than 6 points carries no trend worth testing
SPIKE_RATIO = 2.0  # a spike: above twice the median of the points just before it ...
SPIKE_SHARE = 0.25  # ... and undoing more than a quarter of the fall made so far


def rel_drop(ys: Sequence[float]) -> Optional[float]:
    """Fall over the stretch (Theil-Sen slope times its length) as a fraction of its median level."""
    level = statistics.median(ys)
    if len(ys) < 3 or level <= 0:
        return None
    return -float(stats.theilslopes(ys).slope) * (len(ys) - 1) / level


def plateau_start(losses: Sequence[float], step: int = 5, p_flat: float = 0.1, flat: float = 0.1) -> int:
    """First step (1-based, on a grid of `step`) from which the rest of the curve has no downward trend,
    or falls by less than `flat` of its level; the curve's length when it kept falling to the end."""
    n = len(losses)
    for t in range(0, n - 2 * step + 1, step):
        rest = losses[t:]
        k = max(3, len(rest) // 5)
        level = statistics.median(rest)
        # Head against tail of what is left (Theil-Sen would call a falling head an outlier and see a plateau).
        drop = (statistics.fmean(rest[:k]) - statistics.fmean(rest[-k:])) / level if level > 0 else None
        if trend_p(rest, "less") > p_flat or (drop is not None and drop < flat):
            return t + 1
    return n


def train_curve_tests(losses: Sequence[float]) -> dict[str, float]:
    """Plateau, spikes and late rise of a finite training-loss curve."""
    n = len(losses)
    if n < MIN_POINTS or not all(math.isfinite(v) for v in losses):
        return {}
    w = 5
    smooth = rolling_median(losses, w)
    k = max(3, n // 10)
    start = statistics.fmean(losses[:k])
    half = n // 2
    late = losses[half:]
    out: dict[str, float] = {
        "curve.early_down_p": trend_p(losses[:half], "less"),
        "curve.late_down_p": trend_p(late, "less"),
        "curve.late_up_p": trend_p(late, "greater"),
    }
    best = min(range(n), key=smooth.__getitem__)
    lowest = smooth[best]
    if start > 0:
        out["curve.late_level"] = statistics.fmean(late) / start
    drop = rel_drop(late)  # effect size beside the test: with 30 points a negligible slope is "significant"
    if drop is not None:
        out["curve.late_rel_drop"] = drop
    if lowest > 0:
        out["curve.rise"] = smooth[-1] / lowest
    out["curve.best_at"] = best / (n - 1)
    drop = max(start - lowest, 0.0)
    out["curve.plateau_from"] = plateau_start(losses)
    spikes, late_spikes, worst, inside = 0, 0, 1.0, False
    for i in range(max(w, k), n):
        ref = statistics.median(losses[i - w: i])
        if ref <= 0:
            inside = False
            continue
        r = losses[i] / ref
        worst = max(worst, r)
        spiking = r > SPIKE_RATIO and losses[i] - ref > SPIKE_SHARE * max(drop, 0.05 * abs(start))
        spikes += spiking and not inside  # a spike lasting several steps counts once
        late_spikes += spiking and not inside and i >= half
        inside = spiking
    out["curve.spikes"] = spikes
    out["curve.late_spikes"] = late_spikes
    out["curve.spike_max"] = worst
    return out


def run(ctx) -> None:
    series = ctx.metrics.series
    train = series.get("loss.train")
    if train is None:
        raise SkipProbe("the training burst published no training-loss curve")
    if ctx.full_budget is not None and ctx.budget.train_steps < MIN_CURVE_STEPS:
        raise SkipProbe(f"the burst was cut to {ctx.budget.train_steps} steps to fit the time; the curve tests need "
                        f"{MIN_CURVE_STEPS} (--budget deep runs them)")
    losses = [v for v in train.y]
    if any(v is None or not math.isfinite(v) for v in losses):
        raise SkipProbe("the training loss became NaN or infinite (see nan-loss)")
    found = train_curve_tests(losses)  # type: ignore[arg-type]
    if not found:
        raise SkipProbe(f"the training burst ran {len(losses)} steps; the tests need {MIN_POINTS}")
    sc = ctx.metrics.scalars
    sc.update(found)
    val, tr = series.get("loss.val"), series.get("loss.train_eval")
    if val is not None and tr is not None:
        sc.update(gap_tests(val.y, tr.y))


PROBE = Probe(
    name="curve_tests",
    doc="Mann-Kendall trend tests on the halves of the training-loss curve (plateau, late rise), spikes "
        "above twice the trailing median, and the trend of the validation/training gap.",
    run=run, needs_data=True, order=52, cost="no training: statistics on the burst's curves")
