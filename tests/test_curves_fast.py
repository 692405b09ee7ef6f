"""The vectorised curve statistics give the same numbers as the plain definitions they replace."""

import math
import random
import statistics

import pytest

from doctor import curves, logdir


def _curve(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [math.exp(rng.gauss(0, 0.3)) * (2 - i / n) + (5 if rng.random() < 0.01 else 0) for i in range(n)]


@pytest.mark.parametrize("n", [12, 13, 20, 99, 500, 4000])
def test_window_medians_match_the_definition(n):
    xs = _curve(n, n)
    w = curves.window_for(n)
    first = max(w, n // 10)
    assert curves.trailing_medians(xs, w, first) == [statistics.median(xs[i - w: i]) for i in range(first, n)]
    for win in (9, 11, w):
        h = win // 2
        want = [statistics.median(xs[max(0, i - h): i + h + 1]) for i in range(n)]
        assert curves.rolling_median(xs, win) == pytest.approx(want, rel=1e-12)


def test_even_window_is_the_mean_of_the_two_middles():
    xs = [1.0, 5.0, 2.0, 8.0, 3.0]
    assert curves.trailing_medians(xs, 2, 2) == [3.0, 3.5, 5.0]


@pytest.mark.parametrize("n", [1999, 4001, 7003])
def test_buckets_are_upper_medians_and_keep_non_finite(n):
    rng = random.Random(n)
    values = [rng.random() if rng.random() > 0.01 else rng.choice([math.nan, math.inf, None]) for _ in range(n)]
    steps = list(range(0, 2 * n, 2))
    xs, ys = logdir._buckets(steps, values, 1000)
    k = math.ceil(n / 1000)
    assert xs == [steps[min(i + k, n) - 1] for i in range(0, n, k)]
    for j, i in enumerate(range(0, n, k)):
        chunk = values[i: i + k]
        good = curves.finite(chunk)
        if len(good) == len(chunk):
            assert ys[j] == sorted(good)[len(good) // 2]
        else:
            assert math.isnan(ys[j])
