"""Data statistics: input scale per feature, NaN/Inf, class counts and labels against the output size."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch.utils.data import TensorDataset, WeightedRandomSampler

from doctor.collect.data import read_batches
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.scan import NO_TRAIN
from doctor.metrics import Series


def _feature_view(x: torch.Tensor) -> torch.Tensor:
    """(samples, features): channels of images, the last dim of sequences and tables."""
    if x.dim() == 1:
        return x.reshape(-1, 1)
    if x.dim() in (4, 5):  # N, C, spatial...
        return x.transpose(0, 1).reshape(x.shape[1], -1).T
    return x.reshape(-1, x.shape[-1])


class _Accumulator:
    """Running per-feature sums in float64 on the batch's device; read once at the end."""

    def __init__(self) -> None:
        self.n = 0
        self.s: Optional[torch.Tensor] = None
        self.ss: Optional[torch.Tensor] = None
        self.lo: Optional[torch.Tensor] = None
        self.hi: Optional[torch.Tensor] = None
        self.bad: Optional[torch.Tensor] = None
        self.elements = 0

    def add(self, x: torch.Tensor) -> None:
        f = _feature_view(x.detach()).double()
        finite = torch.isfinite(f)
        bad = (~finite).sum()
        f = torch.where(finite, f, torch.zeros((), dtype=f.dtype, device=f.device))
        cnt = finite.sum(0)
        s, ss = f.sum(0), (f * f).sum(0)
        big = torch.tensor(float("inf"), dtype=f.dtype, device=f.device)
        lo = torch.where(finite, f, big).amin(0)
        hi = torch.where(finite, f, -big).amax(0)
        if self.s is None:
            self.s, self.ss, self.lo, self.hi, self.bad, self.cnt = s, ss, lo, hi, bad, cnt
        elif s.shape != self.s.shape:
            return  # ragged feature sizes (variable-length data): keep the first shape's statistics
        else:
            self.s += s
            self.ss += ss
            self.lo = torch.minimum(self.lo, lo)
            self.hi = torch.maximum(self.hi, hi)
            self.bad += bad
            self.cnt += cnt
        self.elements += f.numel()

    def result(self) -> dict[str, Any]:
        if self.s is None:
            return {}
        cnt = self.cnt.clamp(min=1).cpu()
        mean = self.s.cpu() / cnt
        var = (self.ss.cpu() / cnt - mean * mean).clamp(min=0)
        std = var.sqrt()
        total = float(self.cnt.sum())
        gmean = float(self.s.sum()) / max(total, 1)
        gvar = max(float(self.ss.sum()) / max(total, 1) - gmean * gmean, 0.0)
        varying = std[std > 1e-8]
        return {
            "mean": gmean,
            "std": gvar ** 0.5,
            "min": float(self.lo.min()),
            "max": float(self.hi.max()),
            "feature_mean_abs_max": float(mean.abs().max()),
            "feature_std_max": float(std.max()),
            "feature_scale_ratio": float(varying.max() / varying.min()) if varying.numel() > 1 else 1.0,
            "nonfinite_frac": float(self.bad) / max(self.elements, 1),
            "feature_std": std.tolist(),
        }


def _all_targets(loader: Any) -> Optional[torch.Tensor]:
    """Every target at once when the dataset holds them in memory, so class counts are exact."""
    ds = getattr(loader, "dataset", None)
    if isinstance(ds, TensorDataset) and len(ds.tensors) >= 2:
        return ds.tensors[1]
    targets = getattr(ds, "targets", None)
    if isinstance(targets, torch.Tensor):
        return targets
    if isinstance(targets, list) and targets and isinstance(targets[0], int):
        return torch.tensor(targets)
    return None


def run(ctx) -> None:
    if ctx.synthetic or ctx.train_loader is None:
        raise SkipProbe(NO_TRAIN)
    limit = ctx.budget.data_samples
    xs, ys = _Accumulator(), _Accumulator()
    labels: list[torch.Tensor] = []
    seen = 0
    sc_ndim = 0
    batches = read_batches(ctx.train_loader, name=ctx.setup.names["train_data"])
    for _raw, x, y in batches:
        if x.is_floating_point():
            xs.add(x)
            sc_ndim = x.dim()
        if y.is_floating_point():
            ys.add(y)
        if ctx.task in ("classification", "binary") and y.dim() <= 2:
            labels.append(y.detach().reshape(-1))
        seen += x.shape[0]
        if seen >= limit:
            break
    batches.close()  # drops the loader's iterator, and with it its worker processes
    sc = ctx.metrics.scalars
    sc["data.samples"] = seen
    xr = xs.result()
    if xr:  # integer inputs (token ids) have no scale to judge
        sc["data.input_ndim"] = sc_ndim
        sc.update({
            "data.input_mean": xr["mean"], "data.input_std": xr["std"],
            "data.input_min": xr["min"], "data.input_max": xr["max"],
            "data.input_abs_max": max(abs(xr["min"]), abs(xr["max"])),
            "data.feature_mean_abs_max": xr["feature_mean_abs_max"], "data.feature_std_max": xr["feature_std_max"],
            "data.feature_scale_ratio": xr["feature_scale_ratio"], "data.input_nonfinite_frac": xr["nonfinite_frac"],
        })
        if len(xr["feature_std"]) <= 128:  # a chart of more bars than that says nothing
            ctx.metrics.series["data.feature_std"] = Series(
                x=[str(i) for i in range(len(xr["feature_std"]))], y=xr["feature_std"],
                x_label="input feature (channel for images)", y_label="standard deviation", reference=1.0)
    else:
        sc["data.input_nonfinite_frac"] = 0.0
    yr = ys.result()
    sc["data.target_nonfinite_frac"] = yr.get("nonfinite_frac", 0.0)
    if ctx.task == "regression" and yr:
        sc["data.target_std"] = yr["std"]
        sc["data.target_abs_mean"] = abs(yr["mean"])

    if ctx.task in ("classification", "binary"):
        how = _compensation(ctx.loss_fn, ctx.train_loader)
        sc["data.imbalance_compensated"] = bool(how)
        sc["data.imbalance_compensation"] = how
        sc["data.train_resampled"] = resampled(ctx.train_loader)
        full = _all_targets(ctx.train_loader)
        y = (full if full is not None else torch.cat(labels) if labels else torch.empty(0)).reshape(-1).cpu()
        if ctx.task == "classification":
            if y.is_floating_point():
                return  # soft or one-hot targets: no class indices to count
            ignore = getattr(ctx.loss_fn, "ignore_index", None)
            if isinstance(ignore, int):  # CrossEntropyLoss skips these (-100 padding), so must we
                y = y[y != ignore]
            _class_stats(ctx, y.long(), ctx.num_outputs)
        else:
            y = y[torch.isfinite(y.double())]
            # BCE takes targets in [0, 1]; count the rest as out of range, round the others to a class.
            out_of_range = int(((y < 0) | (y > 1)).sum())
            _class_stats(ctx, y.clamp(0, 1).round().long(), 2)
            ctx.metrics.scalars["data.labels_out_of_range"] = out_of_range


def _weights_classes(w: Any, attr: str) -> bool:
    """Does this loss weight change the balance between classes? A class `weight` does when its entries
    differ (equal ones only rescale the loss); a `pos_weight` does when any entry is not 1."""
    if not isinstance(w, torch.Tensor) or w.numel() == 0:
        return False
    flat = w.detach().reshape(-1).float()
    return bool((flat != 1).any()) if attr == "pos_weight" else bool((flat != flat[0]).any())


def resampled(loader: Any) -> bool:
    """The loader draws with a WeightedRandomSampler: its batches have the class mix it was given, not the data's."""
    samplers = (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None))
    return any(isinstance(s, WeightedRandomSampler) for s in samplers)


def _compensation(loss_fn: Any, loader: Any) -> str:
    """How training already evens out unequal classes ('' when it does not)."""
    for attr in ("weight", "pos_weight"):
        if _weights_classes(getattr(loss_fn, attr, None), attr):
            return f"the loss weights the classes ({type(loss_fn).__name__}({attr}=...))"
    if resampled(loader):
        return "the loader draws samples with a WeightedRandomSampler"
    return ""


def _class_stats(ctx, y: torch.Tensor, upper: int) -> None:
    sc = ctx.metrics.scalars
    if y.numel() == 0:
        return
    if upper <= 0:  # the forward failed, so the output size is unknown: count what is there
        upper = int(y.max()) + 1 if int(y.max()) >= 0 else 1
    else:
        sc["data.labels_out_of_range"] = int(((y < 0) | (y >= upper)).sum())
    sc["data.label_min"] = int(y.min())
    sc["data.label_max"] = int(y.max())
    valid = y[(y >= 0)]
    counts = torch.bincount(valid, minlength=upper) if valid.numel() else torch.zeros(upper, dtype=torch.long)
    seen = counts[counts > 0]
    sc["data.num_classes_seen"] = int(seen.numel())
    if seen.numel():
        sc["data.class_ratio"] = float(seen.max()) / float(seen.min())
        sc["data.majority_class_frac"] = float(seen.max()) / float(counts.sum())
    top = float(seen.max()) if seen.numel() else 0.0
    total = float(counts.sum())
    for label, c in enumerate(counts.tolist()):
        if c == 0 and label >= upper:
            continue
        ctx.metrics.classes[str(label)] = {
            "class.count": c,
            "class.frac": c / total if total else 0.0,
            "class.ratio_to_max": top / c if c else None,
        }
    ctx.metrics.series["data.class_counts"] = Series(
        x=[str(i) for i in range(len(counts))], y=[float(c) for c in counts.tolist()],
        x_label="class", y_label="training samples")


PROBE = Probe(name="data_stats", doc="Input scale per feature, NaN/Inf, class counts, labels against outputs.",
              run=run, needs_model=False, needs_data=True, cost="2k / 8k / 50k samples (quick / standard / deep), no steps", order=10)
