"""One pass over a data split, shared by the data probes: a hash per sample, per-feature moments, labels in order.

Everything is reduced on the device batch by batch and read back once at the end. The pass reads the
loader in its own order, as training does, so runs of one label show up exactly as training sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from doctor.collect.data import read_batches
from doctor.collect.probes import SkipProbe

HASH_ELEMENTS = 1 << 24  # input elements examined per split at most: big inputs are examined on fewer samples
CHUNK = 1 << 22  # elements hashed at once, bounding the int64 temporaries


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


# splitmix64 constants, as signed int64 (torch has no uint64 arithmetic); products wrap modulo 2**64.
_K1, _K2, _K3 = _signed(0x9E3779B97F4A7C15), _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)
_M33, _M29, _M32 = (1 << 33) - 1, (1 << 29) - 1, (1 << 32) - 1  # masks that make `>>` a logical shift
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _as_int64(rows: torch.Tensor) -> torch.Tensor:
    """The rows' raw bit patterns, one int64 per element: samples match only when their bytes do."""
    rows = rows.contiguous()
    if rows.dtype == torch.bool:
        return rows.to(torch.int64)
    bits = _BITS.get(rows.element_size())
    if bits is None or rows.is_complex():
        rows = rows.view(torch.uint8)
        bits = torch.uint8
    return rows.view(bits).to(torch.int64)


class RowHasher:
    """A 64-bit hash of each sample's bytes, on the device: equal samples give equal hashes, and distinct
    ones collide with a chance of about 2**-64 per pair. Position weights are drawn once on the CPU
    from a fixed seed, so hashes agree across splits, runs and devices."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._weights: dict[int, torch.Tensor] = {}

    def _position_weights(self, m: int) -> torch.Tensor:
        if m not in self._weights:
            g = torch.Generator().manual_seed(0x5EED)
            w = torch.randint(-(1 << 62), 1 << 62, (m,), generator=g, dtype=torch.int64) * 2 + 1  # odd
            self._weights[m] = w.to(self.device)
        return self._weights[m]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        flat = x.detach().reshape(n, -1)
        m = flat.shape[1]
        w = self._position_weights(m)
        step = max(1, CHUNK // max(m, 1))
        parts = []
        for i in range(0, n, step):
            v = _as_int64(flat[i: i + step])
            v = (v + _K1) * _K2  # mix each element before the weighted sum, so the hash is not linear in the bits
            v = v ^ ((v >> 31) & _M33)
            parts.append((v * w).sum(1))
        h = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=x.device)
        h = (h ^ ((h >> 35) & _M29)) * _K3 + m
        return h ^ ((h >> 32) & _M32)


def feature_dims(x: torch.Tensor) -> tuple[int, ...]:
    """The dims reduced to get per-feature statistics: all but channels for images, all but the last otherwise."""
    if x.dim() in (4, 5):  # N, C, spatial...
        return (0,) + tuple(range(2, x.dim()))
    return tuple(range(max(x.dim() - 1, 1)))


class _Moments:
    """Per-feature count, sum, sum of squares, min and max of the finite values, accumulated in float64 on the
    device. Batches without NaN/Inf (the usual case) take a path with no masking."""

    def __init__(self) -> None:
        self.acc: Optional[list[torch.Tensor]] = None

    def add(self, x: torch.Tensor, finite: bool) -> None:
        f = x.float() if x.dim() > 1 else x.float()[:, None]
        dims = feature_dims(f)
        if finite:
            kept = _kept(f, dims)
            count = torch.full(kept, f.numel() // max(math.prod(kept), 1), dtype=torch.float64, device=f.device)
            new = [count, f.sum(dims).double(), (f * f).sum(dims).double(), f.amin(dims).double(),
                   f.amax(dims).double()]
        else:
            ok = torch.isfinite(f)
            z = torch.where(ok, f, torch.zeros((), dtype=f.dtype, device=f.device))
            inf = torch.tensor(float("inf"), dtype=f.dtype, device=f.device)
            new = [ok.sum(dims).double(), z.sum(dims).double(), (z * z).sum(dims).double(),
                   torch.where(ok, f, inf).amin(dims).double(), torch.where(ok, f, -inf).amax(dims).double()]
        if self.acc is None:
            self.acc = new
        elif new[0].shape == self.acc[0].shape:  # ragged feature sizes: keep the first shape's statistics
            a = self.acc
            self.acc = [a[0] + new[0], a[1] + new[1], a[2] + new[2], torch.minimum(a[3], new[3]),
                        torch.maximum(a[4], new[4])]

    def result(self) -> Optional[dict[str, torch.Tensor]]:
        if self.acc is None:
            return None
        count, s, ss, lo, hi = (t.reshape(-1).cpu() for t in self.acc)
        mean = s / count.clamp(min=1)
        var = (ss / count.clamp(min=1) - mean * mean).clamp(min=0)
        return {"count": count, "mean": mean, "std": var.sqrt(), "min": lo, "max": hi}


def _kept(f: torch.Tensor, dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for i, d in enumerate(f.shape) if i not in dims)


MAX_CLASSES = 1024  # per-class moments beyond this many classes would cost more than they tell


class _ClassMoments:
    """Per-class, per-feature element count, sum and sum of squares, and samples per class, on the device:
    what comparing two splits class by class needs (a different class mix alone then shifts nothing)."""

    def __init__(self) -> None:
        self.acc: Optional[list[torch.Tensor]] = None  # count (K, F), sum (K, F), sumsq (K, F), samples (K,)
        self.off = False  # ragged features or too many classes: give up, the probes compare marginals

    def add(self, x: torch.Tensor, labels: torch.Tensor, finite: bool) -> None:
        if self.off:
            return
        f = x.float() if x.dim() > 1 else x.float()[:, None]
        if f.dim() == 2:  # one value per sample and feature already
            ok = torch.isfinite(f) if not finite else None
            cnt = ok.double() if ok is not None else torch.ones_like(f, dtype=torch.float64)
            z = torch.where(ok, f, torch.zeros((), dtype=f.dtype, device=f.device)) if ok is not None else f
            s, ss = z.double(), (z * z).double()
        else:
            if f.dim() not in (4, 5):  # (N, ..., features): the features last, like images' channels second
                f = f.movedim(-1, 1)
            dims = tuple(range(2, f.dim()))
            if finite:
                cnt = torch.full(f.shape[:2], math.prod(f.shape[2:]), dtype=torch.float64, device=f.device)
                z = f
            else:
                ok = torch.isfinite(f)
                cnt = ok.sum(dims).double()
                z = torch.where(ok, f, torch.zeros((), dtype=f.dtype, device=f.device))
            s, ss = z.sum(dims).double(), (z * z).sum(dims).double()
        keep = labels >= 0
        lab = labels[keep]
        k = int(lab.max()) + 1 if lab.numel() else 1  # one host read per batch, like the finite check
        if k > MAX_CLASSES or (self.acc is not None and self.acc[0].shape[1] != s.shape[1]):
            self.off, self.acc = True, None
            return
        if self.acc is None or self.acc[0].shape[0] < k:
            grown = [torch.zeros((k, s.shape[1]), dtype=torch.float64, device=s.device) for _ in range(3)]
            grown.append(torch.zeros(k, dtype=torch.float64, device=s.device))
            if self.acc is not None:
                for g, a in zip(grown, self.acc):
                    g[: a.shape[0]] = a
            self.acc = grown
        for acc, part in zip(self.acc[:3], (cnt, s, ss)):
            acc.index_add_(0, lab, part[keep])
        self.acc[3].index_add_(0, lab, torch.ones(lab.numel(), dtype=torch.float64, device=lab.device))

    def result(self) -> Optional[dict[str, torch.Tensor]]:
        if self.acc is None:
            return None
        count, s, ss, samples = (t.cpu() for t in self.acc)
        mean = s / count.clamp(min=1)
        var = (ss / count.clamp(min=1) - mean * mean).clamp(min=0)
        return {"count": count, "mean": mean, "var": var, "samples": samples}


@dataclass
class Scan:
    """What one pass over a split saw; tensors are on the CPU, samples in the loader's order."""

    split: str
    samples: int = 0
    hashes: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    float_inputs: bool = False
    features: Optional[dict[str, torch.Tensor]] = None  # per input feature: count, mean, std, min, max
    sample_mean: Optional[torch.Tensor] = None  # per sample: mean and std of its finite input elements
    sample_std: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None  # one class index per sample (classification, binary); -1 unknown
    targets: Optional[dict[str, torch.Tensor]] = None  # per target column (regression): count, mean, std, ...
    by_class: Optional[dict[str, torch.Tensor]] = None  # per class and feature: count, mean, var; samples
    batch_sizes: list[int] = field(default_factory=list)
    capped: bool = False  # stopped at HASH_ELEMENTS before the sample budget


def _labels(y: torch.Tensor, n: int, task: str) -> Optional[torch.Tensor]:
    if task not in ("classification", "binary") or y.numel() != n:
        return None
    y = y.reshape(-1)
    if y.is_floating_point():
        if task != "binary":
            return None  # soft or one-hot targets carry no class index to follow
        ok = torch.isfinite(y)
        y = torch.where(ok, y.clamp(0, 1).round(), torch.full((), -1.0, dtype=y.dtype, device=y.device))
    return y.long()


def _per_sample(x: torch.Tensor, finite: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each sample's finite elements (NaN for a sample with none)."""
    f = x.reshape(x.shape[0], -1).float()
    if finite:
        std, mean = torch.std_mean(f, dim=1, correction=0)
        return mean, std
    ok = torch.isfinite(f)
    cnt = ok.sum(1).clamp(min=1)
    zero = torch.zeros((), dtype=f.dtype, device=f.device)
    mean = torch.where(ok, f, zero).sum(1) / cnt
    var = torch.where(ok, (f - mean[:, None]) ** 2, zero).sum(1) / cnt
    nan = torch.full((), float("nan"), device=f.device)
    none = ~ok.any(1)
    return torch.where(none, nan, mean), torch.where(none, nan, var.sqrt())


def scan_loader(loader: Any, *, name: str, split: str, task: str, device: torch.device, max_samples: int,
                max_elements: int = HASH_ELEMENTS) -> Scan:
    """Read up to `max_samples` samples (fewer for big inputs) from `loader`, reducing each batch on the device."""
    out = Scan(split=split)
    hasher = RowHasher(device)
    hashes, means, stds, labels = [], [], [], []
    feats, targs, by_class = _Moments(), _Moments(), _ClassMoments()
    elements = 0
    batches = read_batches(loader, name=name)
    for _raw, x, y in batches if max_samples > 0 else ():
        n = int(x.shape[0])
        per = max(1, x[0].numel()) if n else 1
        keep = min(n, max_samples - out.samples, max(1, (max_elements - elements) // per))
        if keep < n:
            x, y = x[:keep], (y[:keep] if y.dim() and y.shape[0] == n else y)
            out.capped = out.capped or out.samples + keep < max_samples
            n = keep
        if n == 0:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        hashes.append(hasher(x))
        if x.is_floating_point():
            out.float_inputs = True
            # One host read per batch picks the unmasked path for clean data; a data scan is host-bound anyway.
            finite = bool(torch.isfinite(x).all())
            feats.add(x.detach(), finite)
            m, s = _per_sample(x.detach(), finite)
            means.append(m)
            stds.append(s)
        lab = _labels(y.detach(), n, task)
        if lab is not None:
            labels.append(lab)
            if x.is_floating_point():
                by_class.add(x.detach(), lab, finite)
        else:
            by_class.off = True
        if task == "regression" and y.is_floating_point() and y.numel() and y.shape[0] == n:
            yt = y.detach().reshape(n, -1)
            targs.add(yt, bool(torch.isfinite(yt).all()))
        out.samples += n
        out.batch_sizes.append(n)
        elements += n * per
        if elements >= max_elements:
            out.capped = out.samples < max_samples
            break
        if out.samples >= max_samples:
            break
    batches.close()  # shut a multi-process loader's workers down now, not at the next collection
    if hashes:
        out.hashes = torch.cat(hashes).cpu()
    if means:
        out.sample_mean, out.sample_std = torch.cat(means).cpu(), torch.cat(stds).cpu()
    if labels and sum(t.numel() for t in labels) == out.samples:
        out.labels = torch.cat(labels).cpu()
    out.features = feats.result()
    out.targets = targs.result()
    out.by_class = by_class.result() if out.labels is not None else None
    return out


NO_TRAIN = "no training data in the target (define train_data)"
NO_VAL = ("no validation data in the target (define val_data): the batches held out for validation come "
          "from the training data itself")


def required_scan(ctx: Any, split: str) -> Scan:
    """scan(ctx, split), or SkipProbe saying which data the target does not define."""
    found = scan(ctx, split)
    if found is None:
        raise SkipProbe(NO_TRAIN if split == "train" else NO_VAL)
    return found


def scan(ctx: Any, split: str) -> Optional[Scan]:
    """The pass over 'train' or 'val' data for this run, made once and shared by the probes; None without data."""
    key = f"scan:{split}"
    if key not in ctx.cache:
        loader = ctx.train_loader if split == "train" else ctx.val_loader
        if loader is None or ctx.synthetic:
            ctx.cache[key] = None
        else:
            name = ctx.setup.names.get("train_data" if split == "train" else "val_data", split)
            ctx.cache[key] = scan_loader(loader, name=name, split=split, task=ctx.task, device=ctx.device,
                                         max_samples=ctx.budget.data_samples)
    return ctx.cache[key]
