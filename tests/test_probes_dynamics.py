"""Dynamic probes in-process on tiny targets: what each measures, that it reads the device rarely, and is seeded."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch

from doctor.collect.budget import BUDGETS
from doctor.collect.context import prepare
from doctor.collect.instrument import UpdateStats, recalibrate_batchnorm
from doctor.collect.probes import SkipProbe, batch_independence, curve_tests, custom_step, lr_range, overfit_batch
from doctor.collect.target import load_target
from doctor.metrics import Metrics

HEADER = """
import torch
from torch import nn
g = torch.Generator().manual_seed(0)
x = torch.randn(512, 8, generator=g)
y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
train_data = (x[:384], y[:384])
val_data = (x[384:], y[384:])
batch_size = 32
"""
MLP = """
def build_model():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
"""


def context(tmp_path: Path, body: str, budget: str = "quick"):
    path = tmp_path / "target.py"
    path.write_text(HEADER + textwrap.dedent(body))
    setup = load_target(str(path), None, device="cpu", seed=0)
    return prepare(setup, Metrics(target=str(path)), BUDGETS[budget], torch.device("cpu"), 0)


# --- batch independence ---------------------------------------------------------------------------------------

def test_independent_samples_measure_exactly_zero(tmp_path: Path) -> None:
    ctx = context(tmp_path, MLP + "\ndef optimizer(model):\n    return torch.optim.Adam(model.parameters(), lr=1e-3)\n")
    batch_independence.run(ctx)
    assert ctx.metrics.scalars["batch.dependence"] == 0.0


def test_softmax_over_the_batch_is_caught(tmp_path: Path) -> None:
    ctx = context(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(8, 4)
            def forward(self, x):
                return torch.log_softmax(self.lin(x), dim=0)
        loss_fn = nn.NLLLoss()
    """)
    batch_independence.run(ctx)
    assert ctx.metrics.scalars["batch.dependence"] > 0.1


def test_batchnorm_in_train_mode_is_not_batch_dependence(tmp_path: Path) -> None:
    # BatchNorm mixes the batch in train mode by design; the probe differentiates in eval mode.
    ctx = context(tmp_path, """
        def build_model():
            return nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    """)
    batch_independence.run(ctx)
    assert ctx.metrics.scalars["batch.dependence"] == 0.0
    assert ctx.setup.model.training  # the model is handed back in train mode


def test_token_inputs_are_differentiated_through_the_embedding(tmp_path: Path) -> None:
    ctx = context(tmp_path, """
        ids = torch.randint(0, 50, (320, 6), generator=g)
        labels = torch.randint(0, 4, (320,), generator=g)
        train_data, val_data = (ids[:256], labels[:256]), (ids[256:], labels[256:])
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(50, 8)
                self.head = nn.Linear(8, 4)
            def forward(self, ids):
                h = self.emb(ids)
                return self.head(h.mean(dim=0, keepdim=True).expand_as(h).mean(dim=1))  # mean over the batch
    """)
    batch_independence.run(ctx)
    assert ctx.metrics.scalars["batch.through_embedding"] is True
    assert ctx.metrics.scalars["batch.dependence"] > 0.1


# --- update/weight ratio and unchanged weights ----------------------------------------------------------------

def test_update_stats_separate_detached_unoptimised_and_frozen_parameters() -> None:
    torch.manual_seed(0)
    enc, mid, head, frozen = (torch.nn.Linear(4, 4) for _ in range(4))
    frozen.requires_grad_(False)
    model = torch.nn.ModuleDict({"enc": enc, "mid": mid, "head": head, "frozen": frozen})
    order = ["enc", "mid", "head", "frozen"]
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.1)  # mid is left out
    stats = UpdateStats(model, order, steps=3, device=torch.device("cpu"), optimizer=opt)
    x = torch.randn(16, 4)
    for step in range(3):
        opt.zero_grad()
        h = enc(frozen(x)).detach()  # enc is cut off from the loss
        mid(h).sum().mul(0).backward(retain_graph=False)  # mid gets a zero gradient
        head(h).pow(2).mean().backward()
        stats.after_backward()
        opt.step()
        stats.after_step(step)
    s = stats.summary()
    assert s["no_grad"] == ["enc.weight", "enc.bias"]  # cut off by .detach(): autograd never reached them
    assert s["not_moved"] == ["mid.weight", "mid.bias"]  # reached (with zeros), but not in the optimizer
    assert set(s["ratio"]) == {"enc", "mid", "head"}  # frozen parameters are not watched
    assert s["ratio"]["head"] > 0 and s["ratio"]["mid"] == 0


def test_parameters_missing_from_the_optimizer_get_gradients_but_do_not_move() -> None:
    a, b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)
    model = torch.nn.Sequential(a, b)
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    stats = UpdateStats(model, ["0", "1"], steps=2, device=torch.device("cpu"), optimizer=opt)
    for step in range(2):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        stats.after_backward()
        opt.step()
        stats.after_step(step)
    assert stats.summary()["not_moved"] == ["0.weight", "0.bias"]


def test_tiny_or_zero_gradients_are_not_unchanged_weights() -> None:
    # Saturated or vanishing layers get (near-)zero gradients: their own rules say so, not this one.
    lin = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(lin, torch.nn.Sigmoid())
    with torch.no_grad():
        lin.bias.fill_(100.0)  # sigmoid saturated: gradients are exactly 0 in float32
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = UpdateStats(model, ["0"], steps=2, device=torch.device("cpu"), optimizer=opt)
    for step in range(2):
        opt.zero_grad()
        model(torch.randn(8, 4)).sum().backward()
        stats.after_backward()
        opt.step()
        stats.after_step(step)
    s = stats.summary()
    assert s["no_grad"] == [] and s["not_moved"] == []


def test_batchnorm_recalibration_uses_the_batches_and_keeps_momentum() -> None:
    bn = torch.nn.BatchNorm1d(3, momentum=0.01)
    model = torch.nn.Sequential(bn)
    x = 5 + 2 * torch.randn(64, 3)
    model.eval()
    recalibrate_batchnorm(model, [x], lambda m, b: m(b))
    assert torch.allclose(bn.running_mean, x.mean(0), atol=1e-5)
    assert bn.momentum == 0.01 and not bn.training


# --- overfit one batch, train/eval ----------------------------------------------------------------------------

def test_a_working_model_memorises_one_batch(tmp_path: Path) -> None:
    ctx = context(tmp_path, MLP + "\ndef optimizer(model):\n    return torch.optim.Adam(model.parameters(), lr=1e-2)\n",
                  budget="standard")
    overfit_batch.run(ctx)
    sc = ctx.metrics.scalars
    assert sc["ovf.loss_ratio"] < 0.1
    assert sc["unchanged.params"] == 0 and "unchanged.names" not in sc
    assert sc["te.loss_gap"] < 0.01
    assert 1e-4 < sc["upd.ratio_median"] < 1


def test_softmax_before_cross_entropy_cannot_memorise(tmp_path: Path) -> None:
    ctx = context(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 4))
            def forward(self, x):
                return self.net(x).softmax(-1)
        def optimizer(model):
            return torch.optim.Adam(model.parameters(), lr=1e-2)
    """, budget="standard")
    overfit_batch.run(ctx)
    # CrossEntropy of probabilities used as logits cannot go below log(1 + 3/e) / log(4) of its start.
    assert ctx.metrics.scalars["ovf.loss_ratio"] > 0.5


def test_eval_mode_branch_shows_as_train_eval_gap(tmp_path: Path) -> None:
    ctx = context(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 4))
            def forward(self, x):
                z = self.net(x)
                return z if self.training else z.softmax(-1)
        def optimizer(model):
            return torch.optim.Adam(model.parameters(), lr=1e-2)
    """, budget="standard")
    overfit_batch.run(ctx)
    assert ctx.metrics.scalars["te.loss_gap"] > 0.2


def test_dropout_and_batchnorm_alone_leave_no_train_eval_gap(tmp_path: Path) -> None:
    ctx = context(tmp_path, """
        def build_model():
            return nn.Sequential(nn.Linear(8, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 4))
        def optimizer(model):
            return torch.optim.Adam(model.parameters(), lr=1e-2)
    """, budget="standard")
    overfit_batch.run(ctx)
    assert ctx.metrics.scalars["te.loss_gap"] < 0.05


def test_overfit_loop_reads_the_device_once_per_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, MLP + "\ndef optimizer(model):\n    return torch.optim.SGD(model.parameters(), lr=1e-9)\n",
                  budget="standard")
    reads = {"n": 0}
    for name in ("item", "tolist", "cpu", "__bool__", "__float__"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, **k):
            reads["n"] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    overfit_batch.run(ctx)
    steps = ctx.metrics.scalars["ovf.steps"]
    assert steps == BUDGETS["standard"].overfit_steps  # a tiny rate never memorises: the whole budget ran
    # One read per CHECK_EVERY steps in the loop, plus a handful at the end, never one per step or layer.
    assert reads["n"] <= steps // overfit_batch.CHECK_EVERY + 12, reads


# --- learning-rate range test ---------------------------------------------------------------------------------

def test_range_test_finds_a_rate_far_above_a_tiny_configured_one(tmp_path: Path) -> None:
    ctx = context(tmp_path, MLP + "\ndef optimizer(model):\n    return torch.optim.SGD(model.parameters(), lr=1e-7, momentum=0.9)\n",
                  budget="standard")
    lr_range.run(ctx)
    sc = ctx.metrics.scalars
    assert sc["lr.sweep_low"] <= 1e-7 / 30 and sc["lr.min_loss_ratio"] < 0.7
    assert sc["lr.configured_ratio"] < 1e-3 and sc["lr.configured_diverges"] is False
    s = ctx.metrics.series["lr.range"]
    assert s.x == sorted(s.x) and s.x[-1] / s.x[0] > 1e3  # the chart draws it on a log axis


def test_range_test_flags_a_configured_rate_past_divergence(tmp_path: Path) -> None:
    ctx = context(tmp_path, MLP + "\ndef optimizer(model):\n    return torch.optim.Adam(model.parameters(), lr=5.0)\n")
    lr_range.run(ctx)
    sc = ctx.metrics.scalars
    assert sc["lr.configured_diverges"] is True and sc["lr.diverge"] < 5.0


def test_range_test_is_seeded(tmp_path: Path) -> None:
    body = MLP + "\ndef optimizer(model):\n    return torch.optim.Adam(model.parameters(), lr=1e-3)\n"
    runs = []
    for _ in range(2):
        ctx = context(tmp_path, body)
        lr_range.run(ctx)
        runs.append({k: v for k, v in ctx.metrics.scalars.items() if k.startswith("lr.")})
    assert runs[0] == runs[1]


def test_valley_analysis_ignores_one_odd_batch() -> None:
    rates = [10 ** (-5 + i / 4) for i in range(24)]
    losses = [2.0 - 0.05 * i for i in range(16)] + [1.2, 1.3, 1.6, 2.5, 4.0, 8.0, 20.0, 50.0]
    losses[12] = 1e-9  # a single batch that happened to be memorised
    found = lr_range.analyse(rates, losses, configured=1e-3)
    assert rates[15] <= found["lr.best"] <= rates[17]  # the raw minimum is at rates[16], not the odd batch
    assert found["lr.suggested"] == pytest.approx(found["lr.best"] / 10)
    assert rates[16] < found["lr.diverge"] <= rates[21]


# --- curve tests ----------------------------------------------------------------------------------------------

def test_plateau_after_progress_is_found_where_it_starts() -> None:
    losses = [1.0 - 0.02 * i for i in range(20)] + [0.6 + 0.01 * ((-1) ** i) for i in range(40)]
    out = curve_tests.train_curve_tests(losses)
    assert out["curve.early_down_p"] < 0.01 and out["curve.late_down_p"] > 0.1
    assert 15 <= out["curve.plateau_from"] <= 26
    assert out["curve.late_level"] > 0.5 and out["curve.spikes"] == 0


def test_steady_fall_has_no_plateau_and_noise_is_not_a_spike() -> None:
    g = torch.Generator().manual_seed(1)
    noise = (0.05 * torch.randn(60, generator=g)).tolist()
    losses = [2.3 * math.exp(-i / 15) + 0.02 + abs(n) for i, n in enumerate(noise)]
    out = curve_tests.train_curve_tests(losses)
    assert out["curve.late_down_p"] < 0.01
    assert out["curve.spikes"] == 0 and out["curve.rise"] < 2


def test_repeated_jumps_count_as_spikes() -> None:
    losses = [1.0 - 0.01 * i for i in range(60)]
    for i in (20, 32, 45):
        losses[i] = 3.0
    assert curve_tests.train_curve_tests(losses)["curve.spikes"] == 3


def test_widening_validation_gap_has_a_small_p_value() -> None:
    out = curve_tests.gap_tests([1.0, 1.1, 1.3, 1.6, 2.0, 2.5], [0.9, 0.6, 0.4, 0.2, 0.1, 0.05])
    assert out["curve.gap_up_p"] < 0.01 and out["curve.val_up_p"] < 0.05
    assert curve_tests.gap_tests([1.0, 0.9, 0.8, 0.7], [0.9, 0.8, 0.7, 0.6])["curve.gap_up_p"] > 0.1


# --- custom train_step ----------------------------------------------------------------------------------------

STEP_MODEL = MLP + "\ndef optimizer(model):\n    return torch.optim.SGD(model.parameters(), lr=0.05)\n"


def step_metrics(tmp_path: Path, step_src: str) -> dict:
    ctx = context(tmp_path, STEP_MODEL + textwrap.dedent(step_src))
    custom_step.run(ctx)
    return ctx.metrics.scalars


def test_a_correct_custom_step_passes_every_check(tmp_path: Path) -> None:
    sc = step_metrics(tmp_path, """
        def train_step(model, batch, optimizer, loss_fn):
            x, y = batch
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            return loss
    """)
    assert sc["step.stale_grad_ratio"] == 0 and sc["step.clip_ineffective"] == 0 and sc["step.clip_calls"] == 3
    assert sc["step.weights_moved"] is True and sc["step.optimizer_steps"] == 3


def test_missing_zero_grad_leaves_stale_gradients(tmp_path: Path) -> None:
    sc = step_metrics(tmp_path, """
        def train_step(model, batch, optimizer, loss_fn):
            loss = loss_fn(model(batch[0]), batch[1])
            loss.backward()
            optimizer.step()
            return loss
    """)
    assert sc["step.stale_grad_ratio"] > 0.5


def test_clipping_imported_by_name_after_the_step_is_ineffective(tmp_path: Path) -> None:
    sc = step_metrics(tmp_path, """
        from torch.nn.utils import clip_grad_norm_
        def train_step(model, batch, optimizer, loss_fn):
            optimizer.zero_grad()
            loss = loss_fn(model(batch[0]), batch[1])
            loss.backward()
            optimizer.step()
            clip_grad_norm_(model.parameters(), 1.0)
            return loss
    """)
    assert sc["step.clip_calls"] == 3 and sc["step.clip_ineffective"] == 3
    assert torch.nn.utils.clip_grad_norm_.__name__ == "clip_grad_norm_"  # unwrapped again


def test_zero_grad_between_backward_and_step_moves_nothing(tmp_path: Path) -> None:
    sc = step_metrics(tmp_path, """
        def train_step(model, batch, optimizer, loss_fn):
            loss = loss_fn(model(batch[0]), batch[1])
            loss.backward()
            optimizer.zero_grad()
            optimizer.step()
            return loss
    """)
    assert sc["step.weights_moved"] is False and sc["step.empty_steps"] == 3


def test_no_train_step_is_recorded_and_skipped(tmp_path: Path) -> None:
    ctx = context(tmp_path, STEP_MODEL)
    with pytest.raises(SkipProbe):
        custom_step.run(ctx)
    assert ctx.metrics.scalars["step.defined"] is False


def test_probes_train_at_a_warm_up_schedulers_peak_rate():
    from doctor.collect.context import at_scheduled_peak

    def opt(lr=1e-2):
        return torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=lr)

    o = opt()
    torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1e-2, total_steps=100)  # starts at max_lr / 25
    assert at_scheduled_peak(o) == pytest.approx(25) and o.param_groups[0]["lr"] == pytest.approx(1e-2)
    o = opt()
    torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10)  # a linear warm-up from 1e-3
    assert at_scheduled_peak(o) == pytest.approx(10) and o.param_groups[0]["lr"] == pytest.approx(1e-2)
    for make in (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5), lambda o: None):  # decay, or none
        o = opt()
        make(o)
        assert at_scheduled_peak(o) == 1.0 and o.param_groups[0]["lr"] == pytest.approx(1e-2)
