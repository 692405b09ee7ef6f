"""Distribution shift: do the training and validation samples look like draws from one distribution?

Each comparison gives an effect size and a p-value: the rules want both, so a tiny but significant
difference in a big data set and a large but noisy one in a tiny validation set both stay quiet.
Standard errors use the number of samples, not of elements: pixels of one image are not independent.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from scipy import stats

from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import Scan, required_scan
from doctor.metrics import Series

_TINY = 1e-12


def _bonferroni(p: float, tests: int) -> float:
    return min(1.0, p * max(tests, 1))


def _strata(train: Scan, val: Scan) -> Optional[tuple[dict, dict, torch.Tensor]]:
    """Per-class moments of both splits over the classes both hold (two samples or more each), and the
    training share of each, so a different class mix alone moves nothing; None to compare marginals."""
    a, b = train.by_class, val.by_class
    if a is None or b is None or a["count"].shape[1] != b["count"].shape[1]:
        return None
    k = min(a["samples"].numel(), b["samples"].numel())
    both = (a["samples"][:k] >= 2) & (b["samples"][:k] >= 2)
    if not bool(both.any()):
        return None
    a, b = ({key: v[:k][both] for key, v in m.items()} for m in (a, b))
    return a, b, a["samples"] / a["samples"].sum()


def _one_stratum(m: dict, samples: int) -> dict:
    """Whole-split moments shaped as a single class."""
    return {"count": m["count"][None], "mean": m["mean"][None], "var": m["std"][None] ** 2,
            "samples": torch.tensor([float(samples)], dtype=torch.float64)}


def _marginal(train: Scan, val: Scan) -> Optional[tuple[dict, dict, torch.Tensor]]:
    a, b = train.features, val.features
    if a is None or b is None or a["count"].shape != b["count"].shape:
        return None
    return _one_stratum(a, train.samples), _one_stratum(b, val.samples), torch.ones(1, dtype=torch.float64)


def _mean_shift(a: dict, b: dict, w: torch.Tensor) -> Optional[tuple[int, float, float, torch.Tensor]]:
    """(feature, its standardised mean difference, its corrected p, every feature's difference) or None.

    Class by class when `a` and `b` hold several classes: differences weighted by the training share."""
    wc = w[:, None]
    ok = ((a["count"] > 0) & (b["count"] > 0)).all(0)
    diff = (wc * (a["mean"] - b["mean"])).sum(0).abs()
    ref = (wc * (a["var"] + b["var"]) / 2).sum(0).sqrt()
    ok &= ref > _TINY  # constant in both splits: the constant-inputs probe speaks for those
    if not bool(ok.any()):
        return None
    # Standard errors count samples, not elements: the pixels of one image are not independent draws.
    se = (wc ** 2 * (a["var"] / a["samples"][:, None] + b["var"] / b["samples"][:, None])).sum(0).sqrt()
    smd = torch.where(ok, diff / ref.clamp(min=_TINY), torch.zeros_like(diff))
    j = int(smd.argmax())
    z = float(diff[j] / se[j]) if float(se[j]) > 0 else math.inf
    p = float(2 * stats.norm.sf(z))
    return j, float(smd[j]), _bonferroni(p, int(ok.sum())), smd


def _zero_one(m: dict) -> torch.Tensor:
    """Features whose moments are those of 0/1 values in every stratum (variance p(1 - p) for mean p)."""
    bern = m["mean"] * (1 - m["mean"])
    return ((m["var"] - bern).abs() <= 0.05 * bern + 1e-9).all(0) & ((m["mean"] >= 0) & (m["mean"] <= 1)).all(0)


def _spread_shift(a: dict, b: dict, w: torch.Tensor) -> Optional[tuple[float, float]]:
    va, vb = (w[:, None] * a["var"]).sum(0), (w[:, None] * b["var"]).sum(0)
    na, nb = float(a["samples"].sum()) - len(w), float(b["samples"].sum()) - len(w)  # within-class dof
    ok = (va > _TINY) & (vb > _TINY)
    # A 0/1 feature's spread follows from its mean, which the mean test judges; the F-test assumes normal data,
    # and on rare 0/1 features (one-hot categories, bag-of-words) it calls noise in a handful of ones significant.
    ok &= ~(_zero_one(a) & _zero_one(b))
    if not bool(ok.any()) or na < 2 or nb < 2:
        return None
    ratio = torch.where(ok, (va / vb.clamp(min=_TINY)).sqrt(), torch.ones_like(va))
    ratio = torch.maximum(ratio, 1 / ratio)
    j = int(ratio.argmax())
    f = float(va[j] / vb[j])
    p = 2 * min(stats.f.sf(f, na, nb), stats.f.cdf(f, na, nb))
    return float(ratio[j]), _bonferroni(float(p), int(ok.sum()))


def _ks(train: Scan, val: Scan) -> Optional[tuple[float, float]]:
    """Largest KS distance of per-sample means and spreads, class by class when labels allow (20+ samples of
    a class on each side), else over all samples."""
    groups = []
    if train.labels is not None and val.labels is not None:
        for c in torch.unique(train.labels[train.labels >= 0]).tolist():
            ta, va = train.labels == c, val.labels == c
            if int(ta.sum()) >= 20 and int(va.sum()) >= 20:
                groups.append((ta, va))
    if not groups:
        groups = [(torch.ones(train.samples, dtype=torch.bool), torch.ones(val.samples, dtype=torch.bool))]
    tests = 2 * len(groups)
    best: Optional[tuple[float, float]] = None
    for a_all, b_all in ((train.sample_mean, val.sample_mean), (train.sample_std, val.sample_std)):
        if a_all is None or b_all is None:
            continue
        for ta, va in groups:
            a, b = a_all[ta], b_all[va]
            a, b = a[torch.isfinite(a)].numpy(), b[torch.isfinite(b)].numpy()
            if len(a) < 8 or len(b) < 8:
                continue
            res = stats.ks_2samp(a, b)
            if best is None or res.statistic > best[0]:
                best = (float(res.statistic), _bonferroni(float(res.pvalue), tests))
    return best


def _label_shift(train: Scan, val: Scan) -> Optional[tuple[float, float]]:
    if train.labels is None or val.labels is None:
        return None
    a, b = train.labels[train.labels >= 0], val.labels[val.labels >= 0]
    if not a.numel() or not b.numel():
        return None
    k = int(max(a.max(), b.max())) + 1
    ca, cb = torch.bincount(a, minlength=k).double(), torch.bincount(b, minlength=k).double()
    tv = float(0.5 * (ca / ca.sum() - cb / cb.sum()).abs().sum())
    used = (ca + cb) > 0
    if int(used.sum()) < 2:
        return tv, 1.0
    table = torch.stack([ca[used], cb[used]]).numpy()
    return tv, float(stats.chi2_contingency(table)[1])


def run(ctx) -> None:
    train = required_scan(ctx, "train")
    val = required_scan(ctx, "val")
    if train.samples < 2 or val.samples < 2:
        raise SkipProbe("fewer than two training or validation samples")
    sc = ctx.metrics.scalars
    sc["data.shift_val_samples"] = val.samples
    # All training inputs identical: any comparison only restates that (the constant-inputs probe reports it).
    constant = int(torch.unique(train.hashes).numel()) <= 1
    groups = None if constant else (_strata(train, val) or _marginal(train, val))
    if groups is not None:
        a, b, w = groups
        shift = _mean_shift(a, b, w)
        if shift is not None:
            j, smd, p, per_feature = shift
            sc["data.shift_smd_max"], sc["data.shift_smd_p"] = smd, p
            sc["data.shift_smd_feature"] = str(j)
            if per_feature.numel() <= 128:  # a chart of more bars than that says nothing
                ctx.metrics.series["data.shift_smd_by_feature"] = Series(
                    x=[str(i) for i in range(per_feature.numel())], y=per_feature.tolist(),
                    x_label="input feature (channel for images)", y_label="standardised mean difference")
        spread = _spread_shift(a, b, w)
        if spread is not None:
            sc["data.shift_std_ratio_max"], sc["data.shift_std_p"] = spread
    ks = None if constant else _ks(train, val)
    if ks is not None:
        sc["data.shift_ks_max"], sc["data.shift_ks_p"] = ks
    labels = _label_shift(train, val)
    if labels is not None:
        sc["data.shift_label_tv"], sc["data.shift_label_p"] = labels
    if train.targets is not None and val.targets is not None \
            and train.targets["count"].shape == val.targets["count"].shape:
        shift = _mean_shift(_one_stratum(train.targets, train.samples), _one_stratum(val.targets, val.samples),
                            torch.ones(1, dtype=torch.float64))
        if shift is not None:
            sc["data.shift_target_smd"], sc["data.shift_target_p"] = shift[1], shift[2]


PROBE = Probe(name="data_shift", doc="Compares training and validation samples: per-feature means and spreads, "
              "per-sample summaries (Kolmogorov-Smirnov), class shares (chi-square) and regression targets.",
              run=run, needs_model=False, needs_data=True, order=14,
              cost="the shared passes over both splits; no steps")
