"""Issue 9's measurements in-process: accumulation's k, functional activations, the rate comparison, time fitting."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import torch

from doctor.collect import pace
from doctor.collect.budget import BUDGETS
from doctor.collect.context import prepare
from doctor.collect.probes import batch_independence, custom_step, lr_compare, lr_range, overfit_batch, training_burst
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


def context(tmp_path: Path, body: str, budget: str = "quick"):
    path = tmp_path / "target.py"
    path.write_text(HEADER + textwrap.dedent(body))
    setup = load_target(str(path), None, device="cpu", seed=0)
    return prepare(setup, Metrics(target=str(path)), BUDGETS[budget], torch.device("cpu"), 0)


# --- gradient accumulation: k is measured, not guessed -------------------------------------------------------

ACCUM = """
def build_model():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))

def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)

def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    total = 0.0
    for xs, ys in zip(x.chunk({k}), y.chunk({k})):
        loss = loss_fn(model(xs), ys){divide}
        loss.backward()
        total += float(loss)
    optimizer.step()
    return torch.tensor(total)
"""


def test_accumulating_k_micro_batches_without_dividing_measures_k(tmp_path: Path) -> None:
    for k in (2, 4):
        ctx = context(tmp_path, ACCUM.format(k=k, divide=""))
        custom_step.run(ctx)
        sc = ctx.metrics.scalars
        assert sc["step.backwards_per_step"] == k
        assert abs(sc["step.grad_multiple"] - k) < 0.05 * k, sc["step.grad_multiple"]


def test_accumulating_with_the_loss_divided_measures_one(tmp_path: Path) -> None:
    ctx = context(tmp_path, ACCUM.format(k=4, divide=" / 4"))
    custom_step.run(ctx)
    assert ctx.metrics.scalars["step.backwards_per_step"] == 4
    assert abs(ctx.metrics.scalars["step.grad_multiple"] - 1.0) < 0.05


# --- functional activations ---------------------------------------------------------------------------------

FUNCTIONAL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 32)
        self.b = nn.Linear(32, 4)
        with torch.no_grad():
            self.a.bias.fill_({bias})
    def forward(self, x):
        return torch.sigmoid(self.b(F.relu(self.a(x))))  # the sigmoid's output is the model's output
import torch.nn.functional as F
loss_fn = nn.MSELoss()
y = torch.nn.functional.one_hot(y, 4).float()
train_data = (x[:384], y[:384])
val_data = (x[384:], y[384:])
"""


def test_functional_relu_is_measured_and_named_after_its_module(tmp_path: Path) -> None:
    ctx = context(tmp_path, FUNCTIONAL.format(bias=-50.0))
    training_burst.run(ctx)
    dead = ctx.metrics.series["act.dead_frac_by_layer"]
    assert dead.x == ["relu()"] or dead.x == ["Net.relu()"] or all(n.endswith("relu()") for n in dead.x), dead.x
    assert max(dead.y) == 1.0  # a bias of -50 kills every unit
    # the sigmoid produces the model's output: it is not a hidden activation, so it is never judged saturated
    assert "act.saturated_frac_by_layer" not in ctx.metrics.series
    site = next(iter(ctx.metrics.layer_sites.values()))
    assert site.endswith(":" + str(site.split(":")[-1])) and "target.py" in site


def test_healthy_functional_relu_is_not_dead(tmp_path: Path) -> None:
    ctx = context(tmp_path, FUNCTIONAL.format(bias=0.0))
    training_burst.run(ctx)
    assert max(ctx.metrics.series["act.dead_frac_by_layer"].y) < 0.5


# --- the rate comparison ------------------------------------------------------------------------------------

def _sgd(lr: float) -> str:
    return f"""
def build_model():
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4))

def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr={lr})
"""


def test_a_rate_decades_low_loses_the_comparison_by_far(tmp_path: Path) -> None:
    ctx = context(tmp_path, _sgd(1e-3), budget="standard")
    lr_range.run(ctx)
    assert ctx.metrics.scalars["lr.configured_ratio"] <= 1 / 30
    lr_compare.run(ctx)
    sc = ctx.metrics.scalars
    assert sc["lrc.factor"] == 30
    assert sc["lrc.descent_configured"] < 0.05
    assert sc["lrc.descent_higher"] > 3 * max(sc["lrc.descent_configured"], 0.01)


def test_a_good_rate_costs_no_comparison(tmp_path: Path) -> None:
    ctx = context(tmp_path, _sgd(0.3), budget="standard")
    lr_range.run(ctx)
    try:
        lr_compare.run(ctx)
    except Exception as exc:  # noqa: BLE001
        assert "within 30x" in str(exc)
    else:
        raise AssertionError("lr_compare ran although the rate is near the suggestion")
    assert "lrc.descent_higher" not in ctx.metrics.scalars


# --- fitting the work to the time -----------------------------------------------------------------------------

def test_a_fast_model_is_never_cut() -> None:
    plan = pace.fit(BUDGETS["standard"], step_s=0.005, forward_s=0.002, batch=32, spent_s=3.0)
    assert not plan.cut and plan.budget == BUDGETS["standard"]


def test_plans_get_cheaper_as_steps_get_slower_and_always_fit_when_they_can() -> None:
    b = BUDGETS["standard"]
    last = None
    for step_s in (0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 6.0):
        plan = pace.fit(b, step_s=step_s, forward_s=step_s / 3, batch=8, spent_s=5.0)
        cost = pace.estimate(plan.budget, step_s, step_s / 3, 8, frozenset(plan.skip))
        assert plan.budget.train_steps <= b.train_steps
        assert plan.budget.init_batches == b.init_batches  # forward passes only: a verdict must not hang on load
        if last is not None:
            assert plan.budget.train_steps <= last.budget.train_steps
            assert len(plan.skip) >= len(last.skip)
        if plan.skip.keys() != {"lr_range", "lr_compare", "overfit_batch", "data_pipeline"}:  # not the floor
            assert cost <= 45.0 + 1e-9, (step_s, cost)
        assert plan.cut == (pace.estimate(b, step_s, step_s / 3, 8) > 45.0)
        last = plan
    assert last.budget.train_steps >= 6 and "lr_range" in last.skip and "overfit_batch" in last.skip


def test_a_cut_burst_judges_no_curve_and_says_why(tmp_path: Path) -> None:
    ctx = context(tmp_path, _sgd(0.1), budget="standard")
    ctx.full_budget, ctx.budget = ctx.budget, dataclasses.replace(ctx.budget, train_steps=8)
    skipped = training_burst.run(ctx)
    assert "cut to 8 steps" in skipped["train_val"]
    sc = ctx.metrics.scalars
    assert "loss.train_rel_drop" not in sc and "loss.train_trend_p" not in sc and sc["loss.nonfinite"] is False
    assert sc["grad.steps"] == 8  # gradients and activations are still measured


# --- batch independence with an output layer that starts at zero ------------------------------------------------

def test_a_zero_initialised_head_still_gets_batch_independence_measured(tmp_path: Path) -> None:
    body = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(8, 16)
        self.head = nn.Linear(16, 4)
        nn.init.zeros_(self.head.weight)  # as torchvision's ViT does
    def forward(self, x):
        h = self.mix(x)
        return self.head(h - h.mean(dim=0))  # the fault: a statistic over the batch
"""
    ctx = context(tmp_path, body)
    ctx.metrics.scalars["static.output_layer"] = "head"
    batch_independence.run(ctx)
    assert ctx.metrics.scalars["batch.dependence"] > 0.1


def test_overfit_keeps_its_memorisation_verdict_when_not_cut(tmp_path: Path) -> None:
    ctx = context(tmp_path, _sgd(0.1))
    overfit_batch.run(ctx)
    assert "ovf.loss_ratio" in ctx.metrics.scalars
