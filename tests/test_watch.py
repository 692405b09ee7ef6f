"""doctor.watch on a plain training loop: faults caught live, healthy runs clean, the run never harmed.

Each test trains a small model in-process with its own loop, as a user would, and calls `mon.step(loss)`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import doctor
from doctor.monitor import DoctorHalt, Monitor
from doctor.monitor import stats as live_stats

REPO = Path(__file__).resolve().parent.parent


def data(n: int = 2048, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 16, generator=torch.Generator().manual_seed(99)) * 2
    y = torch.randint(0, 4, (n,), generator=g)
    return centres[y] + torch.randn(n, 16, generator=g), y


def setup(lr: float = 0.05, dead: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    if dead:
        with torch.no_grad():
            model[0].bias.fill_(-20.0)  # every unit of the first ReLU starts (and stays) below zero
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train(model, opt, steps: int, mon=None, val_every: int = 0) -> list[float]:
    x, y = data()
    losses = []
    for step in range(steps):
        i = (step * 64) % len(x)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        loss.backward()
        opt.step()
        losses.append(loss.detach().clone())
        if mon is not None:
            mon.step(loss)
            if val_every and step % val_every == val_every - 1:
                with torch.no_grad():
                    mon.val(F.cross_entropy(model(x[-256:]), y[-256:]))
    return losses


def hooks_left(model, opt) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()) + \
        len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks)


def test_a_healthy_loop_comes_out_clean_and_is_left_as_found() -> None:
    model, opt = setup()
    with doctor.watch(model, opt, every=50, min_interval_s=0, echo=False, sample_every=2) as mon:
        train(model, opt, 400, mon, val_every=100)
    assert mon.error is None and not mon.disabled
    assert mon.findings == [], [f.rule for f in mon.findings]
    m = mon.metrics()
    assert m.scalars["loss.train_rel_drop"] > 0.5 and m.scalars["grad.steps"] >= 100
    assert hooks_left(model, opt) == 0


def test_the_monitor_does_not_change_the_run() -> None:
    model, opt = setup()
    plain = train(model, opt, 200)
    model, opt = setup()
    with doctor.watch(model, opt, every=20, min_interval_s=0, echo=False, sample_every=3) as mon:
        watched = train(model, opt, 200, mon)
    assert torch.equal(torch.stack(plain), torch.stack(watched))  # bit for bit
    assert mon.metrics().scalars["upd.steps"] == 200 and hooks_left(model, opt) == 0


def test_a_rate_far_too_high_is_caught_and_halt_on_stops_the_run() -> None:
    model, opt = setup(lr=30.0)
    lines: list[str] = []
    with pytest.raises(DoctorHalt) as stop:
        with doctor.watch(model, opt, every=25, echo=lines.append, halt_on=["nan-loss"]) as mon:
            train(model, opt, 1000, mon)
    assert "nan-loss" in str(stop.value) and stop.value.finding.rule == "nan-loss"
    assert mon.steps == 25  # stopped at the first read after the loss went NaN, not at the end
    assert any("error nan-loss" in ln for ln in lines) and len(lines) == len(mon.findings)
    assert hooks_left(model, opt) == 0


def test_a_huge_every_keeps_the_buffers_small_and_still_judges() -> None:
    """every=10**9 once sized the device buffers to a billion steps; they stop at MAX_WINDOW and are read when full."""
    from doctor.monitor import MAX_WINDOW

    model, opt = setup(lr=0.05)
    with doctor.watch(model, opt, every=10**9, echo=False, min_interval_s=0) as mon:
        assert mon._stats.grads.norms.shape[0] <= MAX_WINDOW
        train(model, opt, MAX_WINDOW + 100, mon)
    assert len(mon.metrics().series["loss.train"].y) == MAX_WINDOW + 100  # the full window and the rest, none lost
    assert not {f.rule for f in mon.findings} & {"loss-not-decreasing", "nan-loss"}


def test_dead_units_are_found_live_and_reported(tmp_path: Path) -> None:
    model, opt = setup(dead=True)
    with doctor.watch(model, opt, every=100, min_interval_s=0, echo=False, sample_every=1) as mon:
        train(model, opt, 300, mon)
    dead = [f for f in mon.findings if f.rule == "dead-relu"]
    assert dead and dead[0].location.module == "1", [(f.rule, f.location.module) for f in mon.findings]
    paths = mon.report(tmp_path / "rep")
    assert {p.name for p in paths} >= {"report.html", "report.md", "report.json", "report.sarif", "junit.xml"}
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "dead-relu" in {f["rule"] for f in report["findings"]}
    assert "dead-relu" in (tmp_path / "rep" / "report.html").read_text()


def test_an_error_inside_the_monitor_disables_it_and_leaves_the_loss_curve_bit_identical(monkeypatch) -> None:
    model, opt = setup()
    plain = train(model, opt, 150)

    def broken(self, name, kind):  # a fault in doctor's own forward hook, inside the user's forward
        def hook(*_a):
            raise ZeroDivisionError("a bug in the monitor")
        return hook

    monkeypatch.setattr(live_stats.LiveStats, "_act_hook", broken)
    model, opt = setup()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with doctor.watch(model, opt, every=10, min_interval_s=0, echo=False, sample_every=4) as mon:
            watched = train(model, opt, 150, mon)
    assert mon.disabled and "ZeroDivisionError: a bug in the monitor" in mon.error
    mine = [w for w in caught if "doctor.watch stopped monitoring" in str(w.message)]
    assert len(mine) == 1 and issubclass(mine[0].category, RuntimeWarning)
    assert torch.equal(torch.stack(plain), torch.stack(watched))
    assert hooks_left(model, opt) == 0


def test_an_error_in_the_step_call_is_one_warning_too(monkeypatch) -> None:
    monkeypatch.setattr(live_stats.LiveStats, "read", lambda self: (_ for _ in ()).throw(RuntimeError("read failed")))
    model, opt = setup()
    with pytest.warns(RuntimeWarning, match="doctor.watch stopped monitoring"):
        with doctor.watch(model, opt, every=10, min_interval_s=0, echo=False) as mon:
            train(model, opt, 50, mon)
    assert mon.disabled and mon.steps == 10 and hooks_left(model, opt) == 0


def test_tensorboard_scalars_are_read_back_by_check_logdir(tmp_path: Path) -> None:
    model, opt = setup(lr=30.0)
    with doctor.watch(model, opt, every=50, logdir=tmp_path / "tb", echo=False) as mon:
        train(model, opt, 120, mon)
    from doctor.logdir import read_curves  # noqa: PLC0415

    curves = {c.tag: c for c in read_curves(tmp_path / "tb")}
    assert len(curves["loss/train"].steps) == 120 and curves["loss/train"].steps[0] == 1
    assert "grad_norm/total" in curves
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", "--logdir", str(tmp_path / "tb"), "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "nan-loss" in {f["rule"] for f in json.loads(proc.stdout)["findings"]}, proc.stderr[-2000:]


def test_bad_options_are_clear_errors_at_once() -> None:
    model, opt = setup()
    with pytest.raises(ValueError, match="unknown rule 'nan-los'.*nan-loss"):
        Monitor(model, opt, halt_on=["nan-los"])
    with pytest.raises(ValueError, match="needs doctor's own probes"):
        Monitor(model, opt, rules=["lr-too-low"])
    with pytest.raises(ValueError, match="every must be a positive"):
        Monitor(model, opt, every=0)


@pytest.mark.parametrize(("args", "said"), [((), "0 findings"), (("--lr", "30"), "doctor.watch stopped the run at step 100: nan-loss")])
def test_the_plain_loop_example_runs(tmp_path: Path, args: tuple, said: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "watch" / "plain_loop.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert said in proc.stdout
    assert (tmp_path / "doctor-watch-report" / "report.html").exists() and any((tmp_path / "runs" / "watch").iterdir())
