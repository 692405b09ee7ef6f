"""Statistics of loss and accuracy curves, shared by the training burst and TensorBoard logs (no torch)."""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence

from scipy import stats

from doctor.metrics import Value

MIN_POINTS = 6  # fewer points than this carry no trend worth testing


def finite(xs: Sequence[Optional[float]]) -> list[float]:
    return [x for x in xs if x is not None and math.isfinite(x)]


def all_finite(xs: Sequence[Optional[float]]) -> bool:
    return bool(xs) and len(finite(xs)) == len(xs)


def first_nonfinite(xs: Sequence[Optional[float]]) -> int:
    """Index of the first NaN, infinite or missing value; -1 when there is none."""
    return next((i for i, v in enumerate(xs) if v is None or not math.isfinite(v)), -1)


def head_tail(losses: Sequence[float]) -> tuple[float, float]:
    """Mean of the first and of the last tenth (at least three points each)."""
    k = max(3, len(losses) // 10)
    return statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])


def trend_p(losses: Sequence[float]) -> float:
    """One-sided p-value that the curve has no downward trend (Mann-Kendall via Kendall's tau)."""
    tau = stats.kendalltau(range(len(losses)), losses, alternative="less")
    return float(tau.pvalue) if math.isfinite(tau.pvalue) else 1.0


def train_stats(losses: Sequence[float]) -> dict[str, Value]:
    """loss.nonfinite and, for a finite curve of MIN_POINTS or more, start, end, relative drop and trend."""
    bad = first_nonfinite(losses)
    out: dict[str, Value] = {"loss.nonfinite": bad >= 0}
    if bad >= 0 or len(losses) < MIN_POINTS:
        return out
    start, end = head_tail(losses)
    out["loss.train_start"], out["loss.train_end"] = start, end
    out["loss.train_rel_drop"] = (start - end) / abs(start) if start else 0.0
    out["loss.train_trend_p"] = trend_p(losses)
    return out


def val_stats(val: Sequence[Optional[float]], train_ref: Optional[float]) -> dict[str, Value]:
    """Start, end, best and rise of a finite validation curve; its gap to a training loss when one is given."""
    if not all_finite(val):
        return {}
    lo = min(val)
    out: dict[str, Value] = {"loss.val_start": val[0], "loss.val_end": val[-1], "loss.val_min": lo,
                             "loss.val_rise": val[-1] / lo if lo > 0 else 1.0}
    if train_ref is not None and math.isfinite(train_ref) and train_ref > 0:
        out["loss.gap_ratio"] = val[-1] / train_ref
    return out


def acc_stats(train_acc: Optional[float], val_acc: Optional[float]) -> dict[str, Value]:
    if train_acc is None or val_acc is None or not (math.isfinite(train_acc) and math.isfinite(val_acc)):
        return {}
    return {"acc.val_end": val_acc, "acc.train_end": train_acc, "acc.gap": train_acc - val_acc}


def rolling_median(xs: Sequence[float], window: int) -> list[float]:
    """Centred running median (the window shrinks at the ends): a smoothing that ignores single spikes."""
    half = window // 2
    return [statistics.median(xs[max(0, i - half): i + half + 1]) for i in range(len(xs))]


def window_for(n: int) -> int:
    """An odd smoothing window: about a twentieth of the curve, at least 5 points."""
    w = max(5, n // 20)
    return w + 1 - w % 2


def rise_stats(losses: Sequence[float]) -> dict[str, Value]:
    """How far the smoothed curve ends above its best, and where (as a fraction of the run) the best was."""
    if len(losses) < MIN_POINTS or not all_finite(losses):
        return {}
    smooth = rolling_median(losses, window_for(len(losses)))
    best = min(range(len(smooth)), key=smooth.__getitem__)
    lo = smooth[best]
    if lo <= 0:  # a ratio to a non-positive loss means nothing (log-likelihoods, shifted losses)
        return {}
    return {"run.loss_rise": smooth[-1] / lo, "run.loss_best_at": best / (len(smooth) - 1)}


def spike_stats(losses: Sequence[float], *, ratio: float = 2.0, share_of_drop: float = 0.25) -> dict[str, Value]:
    """Spikes: points above `ratio` times the median of the preceding window and, when the loss fell
    over the run, also more than `share_of_drop` of that fall above it. Mini-batch noise late in a run
    (0.1 -> 0.3 after falling from 2.3) is not a spike; a jump back towards the starting loss is.
    The first tenth of the run is left out: early losses fall too fast for a trailing median."""
    n = len(losses)
    if n < 2 * MIN_POINTS or not all_finite(losses):
        return {}
    w = window_for(n)
    start, _ = head_tail(losses)
    lowest = min(rolling_median(losses, w))
    drop = max(start - lowest, 0.0)
    spikes, worst, inside = 0, 1.0, False
    for i in range(max(w, n // 10), n):
        level = statistics.median(losses[i - w: i])
        if level <= 0:
            inside = False
            continue
        r = losses[i] / level
        worst = max(worst, r)
        spiking = r > ratio and losses[i] - level > share_of_drop * drop
        spikes += spiking and not inside  # a spike lasting several points counts once
        inside = spiking
    return {"run.loss_spikes": spikes, "run.loss_spike_max": worst}
