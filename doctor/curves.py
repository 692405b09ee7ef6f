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


def trend_p(ys: Sequence[float], alternative: str = "less") -> float:
    """One-sided Mann-Kendall p-value (Kendall's tau against the index): 'less' tests for a downward trend,
    'greater' for an upward one; 1.0 for fewer than three points or a flat curve."""
    if len(ys) < 3 or len(set(ys)) < 2:
        return 1.0
    p = stats.kendalltau(range(len(ys)), ys, alternative=alternative).pvalue
    return float(p) if math.isfinite(p) else 1.0


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
    half, n = window // 2, len(xs)
    if n <= 2 * half + 1:  # no full window: the ends are all there is
        return [statistics.median(xs[max(0, i - half): i + half + 1]) for i in range(n)]
    # The full windows at once (a live run judges curves of thousands of steps), the shrunk ends one by one.
    middle = _window_medians(xs, 2 * half + 1)
    return _growing_medians(xs[:2 * half], half) + middle + _growing_medians(xs[n - 2 * half:][::-1], half)[::-1]


def trailing_medians(xs: Sequence[float], window: int, first: int) -> list[float]:
    """median(xs[i - window:i]) for i from first (at least window) to the end, all at once."""
    return _window_medians(xs[first - window: len(xs) - 1], window) if first < len(xs) else []


def _window_medians(xs: Sequence[float], window: int) -> list[float]:
    """The median of every full window of xs, in order."""
    import numpy as np  # noqa: PLC0415

    a = np.asarray(xs, dtype=float)
    if window % 2 == 0 or not np.isfinite(a).all():  # an even window's median is the mean of two middles
        return np.median(np.lib.stride_tricks.sliding_window_view(a, window), axis=1).tolist()
    from scipy import ndimage  # noqa: PLC0415

    # A running selection in C: fifty times quicker than sorting each window (the medians are the same).
    half = window // 2
    return ndimage.median_filter(a, size=window, mode="nearest")[half: len(a) - half].tolist()


def _growing_medians(xs: Sequence[float], half: int) -> list[float]:
    """Medians of xs[:half + 1], xs[:half + 2], ... xs[:2 * half]: one sorted list grown by insertion."""
    import bisect  # noqa: PLC0415

    window = sorted(xs[:half])
    out = []
    for x in xs[half:2 * half]:
        bisect.insort(window, x)
        k = len(window)
        out.append(window[k // 2] if k % 2 else (window[k // 2 - 1] + window[k // 2]) / 2)
    return out


def window_for(n: int) -> int:
    """An odd smoothing window: about a tenth of the curve, at least 9 points."""
    w = max(9, n // 10)
    return w + 1 - w % 2


def log_noise(xs: Sequence[float], window: int) -> float:
    """Robust spread of the log loss around its running median (1.4826 x MAD): the mini-batch noise."""
    logs = [math.log(x) for x in xs]
    smooth = rolling_median(logs, window)
    return 1.4826 * statistics.median(abs(a - b) for a, b in zip(logs, smooth))


def _positive(xs: Sequence[float]) -> bool:
    return all_finite(xs) and all(x > 0 for x in xs)


def rise_stats(losses: Sequence[float], *, margin: float = 4.0) -> dict[str, Value]:
    """How far the smoothed curve ends above its best, discounted for noise, and where the best was.

    The running median of w points still wanders by about 1.25 sigma / sqrt(w) (sigma: the log-loss
    noise), and the lowest of many such medians is biased low; the ratio is lowered by `margin` of
    those wanderings (for the end and for the best), so a noisy but converged run is not called diverged.
    """
    n = len(losses)
    if n < 2 * MIN_POINTS or not _positive(losses):  # ratios of non-positive losses mean nothing
        return {}
    w = window_for(n)
    smooth = rolling_median(losses, w)
    best = min(range(n), key=smooth.__getitem__)
    wander = 1.25 * log_noise(losses, w) / math.sqrt(w)
    log_rise = math.log(smooth[-1] / smooth[best]) - margin * math.sqrt(2) * wander
    return {"run.loss_rise": math.exp(max(0.0, log_rise)), "run.loss_best_at": best / (n - 1)}


def spike_stats(losses: Sequence[float], *, ratio: float = 2.0, sigmas: float = 6.0,
                share_of_drop: float = 0.25) -> dict[str, Value]:
    """Spikes: jumps above the median of the preceding window by more than `ratio` times, more than
    `sigmas` times the run's own log-loss noise, and (when the loss fell over the run) by more than
    `share_of_drop` of that fall. Mini-batch noise is not a spike, however long the run; a jump back
    towards the starting loss is. The first tenth of the run is left out: early losses fall too fast
    for a trailing median. A spike lasting several points counts once."""
    n = len(losses)
    if n < 2 * MIN_POINTS or not _positive(losses):
        return {}
    w = window_for(n)
    threshold = max(math.log(ratio), sigmas * log_noise(losses, w))
    start, _ = head_tail(losses)
    drop = max(start - min(rolling_median(losses, w)), 0.0)
    spikes, worst, inside = 0, 1.0, False
    first = max(w, n // 10)
    for i, level in enumerate(trailing_medians(losses, w, first), start=first):
        r = losses[i] / level
        worst = max(worst, r)
        spiking = math.log(r) > threshold and losses[i] - level > share_of_drop * drop
        spikes += spiking and not inside
        inside = spiking
    return {"run.loss_spikes": spikes, "run.loss_spike_max": worst}


def gap_tests(val: Sequence[Optional[float]], train_eval: Sequence[Optional[float]]) -> dict[str, float]:
    """Is the validation loss pulling away from the training-set loss (both in eval mode), and rising?"""
    pairs = [(v, t) for v, t in zip(val, train_eval)
             if v is not None and t is not None and math.isfinite(v) and math.isfinite(t)]
    if len(pairs) < 3 or len(pairs) != len(val):
        return {}
    vals = [v for v, _ in pairs]
    return {"curve.gap_up_p": trend_p([v - t for v, t in pairs], "greater"),
            "curve.val_up_p": trend_p(vals[len(vals) // 2 - 1:] if len(vals) >= 4 else vals, "greater")}
