"""The data probes in process: each rule fires on its fault and stays quiet on healthy data drawn the same way.

Contexts are prepared from in-memory setups (no target file, no child process), the probes run as the
worker runs them, and the built-in rules judge the metrics, so a threshold without margin fails here.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from doctor.collect.budget import BUDGETS
from doctor.collect.context import prepare
from doctor.collect.probes import SkipProbe, registry
from doctor.collect.scan import RowHasher, scan_loader
from doctor.collect.target import TrainingSetup
from doctor.engine.evaluate import judge
from doctor.engine.loader import load_rules
from doctor.metrics import Metrics

CPU = torch.device("cpu")
DATA_PROBES = ("data_leakage", "data_constant", "data_shift", "data_order", "data_targets", "data_pipeline")
RULES = {r.id: r for r in load_rules()}
MINE = ("data-leakage", "distribution-shift", "label-shift", "target-shift", "unshuffled-data", "constant-inputs",
        "unscaled-targets", "dataloader-bottleneck")


def blobs(n: int, seed: int, dim: int = 8, classes: int = 4, probs=None):
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    if probs is None:
        y = torch.randint(0, classes, (n,), generator=g)
    else:
        y = torch.multinomial(torch.tensor(probs), n, replacement=True, generator=g)
    return centres[y] + torch.randn(n, dim, generator=g), y


def mlp(dim: int = 8, out: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 16), nn.ReLU(), nn.Linear(16, out))


def run_data_probes(train, val=None, *, model=None, task=None, budget="standard", seed=0,
                    probes=DATA_PROBES) -> tuple[Metrics, dict[str, str]]:
    """Prepare a context as the worker does and run the data probes; returns the metrics and skip reasons."""
    torch.manual_seed(seed)
    setup = TrainingSetup(path="inline.py", model=model if model is not None else mlp(), train_data=train,
                          val_data=val, batch_size=32, task=task,
                          names={"train_data": "train_data", **({"val_data": "val_data"} if val is not None else {})})
    metrics = Metrics()
    ctx = prepare(setup, metrics, BUDGETS[budget], CPU, seed)
    skipped: dict[str, str] = {}
    for probe in registry():
        if probe.name in probes:
            try:
                probe.run(ctx)
            except SkipProbe as exc:
                skipped[probe.name] = str(exc)
    return metrics, skipped


def fired(metrics: Metrics) -> set[str]:
    return {f.rule for f in judge([RULES[r] for r in MINE], metrics).findings}


# --- the hash ------------------------------------------------------------------------------------------------------

def test_row_hash_is_equal_for_equal_rows_and_distinct_otherwise():
    h = RowHasher(CPU)
    x = torch.randn(500, 3, 4, 4)
    assert torch.equal(h(x), RowHasher(CPU)(x.clone())), "the same bytes must hash the same in any hasher"
    assert torch.unique(h(x)).numel() == 500
    y = x.clone()
    y[7, 1, 2, 3] = torch.nextafter(y[7, 1, 2, 3], torch.tensor(float("inf")))  # one ulp in one element
    assert (h(y) != h(x)).sum() == 1
    # Small discrete rows: every distinct row gets its own hash.
    rows = torch.cartesian_prod(*[torch.arange(3)] * 6)
    assert torch.unique(h(rows)).numel() == 3 ** 6
    for dtype in (torch.uint8, torch.int16, torch.float16, torch.bfloat16, torch.float64, torch.bool):
        t = (torch.rand(50, 10) > 0.5).to(dtype)
        assert torch.equal(h(t), h(t.clone())) and h(t).dtype == torch.int64


def test_scan_follows_the_loader_order_and_caps_big_inputs():
    x, y = blobs(256, seed=0)
    order = torch.argsort(y, stable=True)
    loader = DataLoader(TensorDataset(x[order], y[order]), batch_size=32)
    s = scan_loader(loader, name="train_data", split="train", task="classification", device=CPU, max_samples=10_000)
    assert s.samples == 256 and torch.equal(s.labels, y[order]) and s.batch_sizes == [32] * 8
    capped = scan_loader(loader, name="train_data", split="train", task="classification", device=CPU,
                         max_samples=10_000, max_elements=8 * 100)
    assert capped.samples == 100 and capped.capped


# --- data leakage --------------------------------------------------------------------------------------------------

def test_leakage_fires_on_a_handful_of_copies():
    x, y = blobs(2500, seed=0)
    train = (x[:2000], y[:2000])
    val = (torch.cat([x[2000:], x[:5]]), torch.cat([y[2000:], y[:5]]))  # 5 copies among 505
    m, _ = run_data_probes(train, val)
    assert m.scalars["data.leak_val_in_train"] == 5
    assert "data-leakage" in fired(m)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leakage_quiet_on_independent_draws(seed):
    m, _ = run_data_probes(blobs(2000, seed=seed), blobs(500, seed=seed + 10))
    assert m.scalars["data.leak_val_in_train"] == 0 and not fired(m)


def test_leakage_quiet_on_discrete_inputs_that_repeat_by_chance():
    # Four binary features: only 16 possible rows, so validation rows match training rows by chance.
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (3000, 4), generator=g).float()
    y = (x.sum(1) > 1).long()
    m, _ = run_data_probes((x[:2500], y[:2500]), (x[2500:], y[2500:]), model=mlp(4, 2))
    assert m.scalars["data.leak_frac"] > 0.9 and m.scalars["data.train_repeat_frac"] > 0.9
    assert "data-leakage" not in fired(m)


def test_leakage_and_shift_skip_without_validation_data():
    m, skipped = run_data_probes(blobs(2000, seed=0))
    assert "held out" in skipped["data_leakage"] and "held out" in skipped["data_shift"]
    assert "data.leak_frac" not in m.scalars


# --- distribution shift --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_shift_quiet_when_both_splits_come_from_one_generator(seed):
    m, _ = run_data_probes(blobs(2000, seed=seed), blobs(300, seed=seed + 100))
    assert not fired(m) & {"distribution-shift", "label-shift", "target-shift"}, m.scalars


def test_shift_fires_on_a_mean_offset_and_on_a_rescaled_split():
    x, y = blobs(500, seed=1)
    m, _ = run_data_probes(blobs(2000, seed=0), (x + 0.6, y))
    assert m.scalars["data.shift_smd_max"] > 0.3 and "distribution-shift" in fired(m)
    m, _ = run_data_probes(blobs(2000, seed=0), (x * 1.8, y))
    assert m.scalars["data.shift_std_ratio_max"] > 1.5 and "distribution-shift" in fired(m)


def test_a_different_class_mix_is_label_shift_not_input_shift():
    # Class-conditional comparison: the inputs of each class match, only the mix differs.
    m, _ = run_data_probes(blobs(3000, seed=0), blobs(800, seed=1, probs=[0.7, 0.1, 0.1, 0.1]))
    assert fired(m) == {"label-shift"}, m.scalars


def test_shift_on_regression_targets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2500, 8, generator=g)
    y = x[:, :1] + 0.1 * torch.randn(2500, 1, generator=g)
    m, _ = run_data_probes((x[:2000], y[:2000]), (x[2000:], y[2000:] + 1.0), model=mlp(8, 1))
    assert m.scalars["data.shift_target_smd"] > 0.5 and fired(m) == {"target-shift"}
    m, _ = run_data_probes((x[:2000], y[:2000]), (x[2000:], y[2000:]), model=mlp(8, 1))
    assert not fired(m) & {"distribution-shift", "target-shift"}


# --- unshuffled data -----------------------------------------------------------------------------------------------

def test_unshuffled_fires_on_a_label_sorted_loader_without_shuffle():
    x, y = blobs(2000, seed=0)
    order = torch.argsort(y, stable=True)
    m, _ = run_data_probes(DataLoader(TensorDataset(x[order], y[order]), batch_size=32), blobs(300, seed=1),
                           budget="quick")
    assert m.scalars["data.order_change_ratio"] < 0.01 and "unshuffled-data" in fired(m)
    assert m.series["data.order_batch_majority"].y[0] == 1.0


@pytest.mark.parametrize("probs", [None, [0.95, 0.05]])
def test_unshuffled_quiet_on_shuffled_data_even_when_imbalanced(probs):
    classes = 2 if probs else 4
    train = blobs(2000, seed=0, classes=classes, probs=probs)
    m, _ = run_data_probes(train, blobs(300, seed=1, classes=classes, probs=probs), model=mlp(8, classes))
    assert 0.8 < m.scalars["data.order_change_ratio"] < 1.2 and "unshuffled-data" not in fired(m)


def test_unshuffled_quiet_on_alternating_labels_and_skipped_for_regression():
    x, y = blobs(512, seed=0, classes=2)
    y = torch.arange(512) % 2  # a balanced sampler: more changes than shuffling gives
    m, _ = run_data_probes(DataLoader(TensorDataset(x, y), batch_size=32), model=mlp(8, 2))
    assert m.scalars["data.order_change_ratio"] > 1.5 and "unshuffled-data" not in fired(m)
    _, skipped = run_data_probes((x, torch.randn(512, 1)), model=mlp(8, 1))
    assert "not a classification task" in skipped["data_order"]


# --- constant inputs -----------------------------------------------------------------------------------------------

class _SameInput(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[0], self.y[i]


def test_constant_inputs_fire_on_one_repeated_input_and_on_constant_features():
    x, y = blobs(1000, seed=0)
    m, _ = run_data_probes(_SameInput(x, y), blobs(300, seed=1), budget="quick")
    assert m.scalars["data.distinct_inputs"] == 1 and "constant-inputs" in fired(m)
    assert "data.shift_smd_max" not in m.scalars, "a constant training set must not also read as a shift"
    x2 = x.clone()
    x2[:, :5] = 0.0  # five of eight columns filled with a default
    m, _ = run_data_probes((x2, y), budget="quick")
    assert m.scalars["data.constant_features"] == 5 and "constant-inputs" in fired(m)


def test_constant_inputs_quiet_on_varied_data_and_token_ids():
    m, _ = run_data_probes(blobs(1000, seed=0), budget="quick")
    assert m.scalars["data.constant_features"] == 0 and not fired(m)
    g = torch.Generator().manual_seed(0)
    ids, y = torch.randint(0, 100, (512, 12), generator=g), torch.randint(0, 2, (512,), generator=g)
    model = nn.Sequential(nn.Embedding(100, 8), nn.Flatten(), nn.Linear(96, 2))
    m, _ = run_data_probes((ids, y), model=model, budget="quick")
    assert m.scalars["data.distinct_inputs"] > 500 and "data.constant_features" not in m.scalars
    assert not fired(m)


# --- regression targets --------------------------------------------------------------------------------------------

def test_unscaled_targets_fire_on_raw_units_and_on_mixed_scales():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=g)
    y = x[:, :1] * 50 + 300
    m, _ = run_data_probes((x, y), model=mlp(8, 1), budget="quick")
    assert m.scalars["data.target_std_max"] > 10 and "unscaled-targets" in fired(m)
    y2 = torch.cat([x[:, :1], x[:, 1:2] * 1e-3], dim=1)
    m, _ = run_data_probes((x, y2), model=mlp(8, 2), task="regression", budget="quick")
    assert m.scalars["data.target_scale_ratio"] > 100 and "unscaled-targets" in fired(m)


def test_unscaled_targets_quiet_on_standardised_targets_and_skip_classification():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=g)
    y = x[:, :1] + 0.1 * torch.randn(1000, 1, generator=g)
    m, _ = run_data_probes((x, (y - y.mean()) / y.std()), model=mlp(8, 1), budget="quick")
    assert "unscaled-targets" not in fired(m)
    _, skipped = run_data_probes(blobs(500, seed=0), budget="quick")
    assert "not a regression task" in skipped["data_targets"]


# --- dataloader bottleneck ------------------------------------------------------------------------------------------

class _Slow(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        time.sleep(0.001)
        return self.x[i], self.y[i]


def test_bottleneck_fires_on_a_slow_dataset():
    x, y = blobs(256, seed=0)
    m, _ = run_data_probes(DataLoader(_Slow(x, y), batch_size=32, shuffle=True), probes=("data_pipeline",))
    sc = m.scalars
    assert sc["data.loader_batch_s"] > 0.025 and sc["data.loader_workers"] == 0
    assert "dataloader-bottleneck" in fired(m), sc
    assert m.series["data.loader_timing"].x == ["load a batch", "training step"]


def test_bottleneck_quiet_on_in_memory_tensors():
    m, _ = run_data_probes(blobs(2000, seed=0), probes=("data_pipeline",))
    assert m.scalars["data.loader_batch_s"] < 0.01 and "dataloader-bottleneck" not in fired(m)


def test_budgets_are_declared_and_the_timing_probe_skips_quick():
    probes = {p.name: p for p in registry()}
    assert all(p.cost for p in probes.values()), [p.name for p in probes.values() if not p.cost]
    # Every probe runs at some budget, or behind a switch (the DDP burst runs only with --nproc N).
    assert all(set(p.budgets) <= set(BUDGETS) and (p.budgets or p.opt_in) for p in probes.values())
    assert probes["distributed"].opt_in == "nproc" and not probes["distributed"].budgets
    assert "quick" not in probes["data_pipeline"].budgets
    for name in DATA_PROBES:
        assert 10 <= probes[name].order < 20, name


def test_what_counts_as_compensating_for_unequal_classes():
    from torch.utils.data import BatchSampler, WeightedRandomSampler

    from doctor.collect.probes.data_stats import _compensation

    ds = TensorDataset(torch.randn(8, 2), torch.tensor([0] * 7 + [1]))
    plain = DataLoader(ds, batch_size=4, shuffle=True)
    assert _compensation(nn.CrossEntropyLoss(), plain) == ""
    assert _compensation(nn.CrossEntropyLoss(weight=torch.tensor([2.0, 2.0])), plain) == ""  # only rescales
    assert "weight=" in _compensation(nn.CrossEntropyLoss(weight=torch.tensor([1.0, 7.0])), plain)
    assert "pos_weight=" in _compensation(nn.BCEWithLogitsLoss(pos_weight=torch.tensor([7.0])), plain)
    assert _compensation(nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0])), plain) == ""
    sampler = WeightedRandomSampler(torch.ones(8), num_samples=8)
    assert "WeightedRandomSampler" in _compensation(nn.CrossEntropyLoss(), DataLoader(ds, batch_size=4, sampler=sampler))
    by_batch = DataLoader(ds, batch_sampler=BatchSampler(sampler, 4, drop_last=False))
    assert "WeightedRandomSampler" in _compensation(nn.CrossEntropyLoss(), by_batch)
