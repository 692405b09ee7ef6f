"""Facts read from the target's source (AST): functional dropout, train_step, clipping order, schedulers,
and where `self.x = ...` is assigned; construction sites recorded while the model is built."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from doctor.collect.static.sites import Sites, record_sites
from doctor.metrics import split_site
from doctor.collect.static.source import SourceUnavailable, analyse_source, read_source


def facts(body: str):
    return analyse_source("/m.py", textwrap.dedent(body))


@pytest.mark.parametrize("call, flagged", [
    ("F.dropout(x, 0.5)", True),
    ("F.dropout(x, p=0.5, training=True)", True),
    ("F.dropout(x, 0.5, training=self.training)", False),
    ("F.dropout(x, 0.5, self.training)", False),
    ("nn.functional.dropout2d(x, 0.1)", True),
    ("torch.nn.functional.alpha_dropout(x, 0.1)", True),
    ("dropout(x, 0.5)", True),  # imported from torch.nn.functional below
    ("self.dropout(x)", False),  # an nn.Dropout module follows model.eval()
])
def test_functional_dropout_in_forward(call: str, flagged: bool) -> None:
    f = facts(f"""
        import torch.nn.functional as F
        from torch.nn.functional import dropout
        class Net(nn.Module):
            def forward(self, x):
                return {call}
    """)
    assert bool(f.always_on_dropout) is flagged
    if flagged:
        assert f.always_on_dropout[0].site == "/m.py:6" and f.always_on_dropout[0].what.endswith("in Net.forward")


def test_dropout_outside_forward_is_not_flagged() -> None:
    assert not facts("""
        def augment(x):
            return F.dropout(x, 0.1)
    """).always_on_dropout


@pytest.mark.parametrize("body, zeroes", [
    ("loss.backward(); optimizer.step()", False),
    ("optimizer.zero_grad(); loss.backward(); optimizer.step()", True),
    ("model.zero_grad(set_to_none=True); loss.backward(); optimizer.step()", True),
    ("reset(model); loss.backward(); optimizer.step()", True),  # zero_grad in a helper of the same file
    ("for p in model.parameters(): p.grad = None", True),
])
def test_train_step_zero_grad(body: str, zeroes: bool) -> None:
    f = facts(f"""
        def reset(model):
            model.zero_grad()

        def train_step(model, batch, optimizer, loss_fn):
            loss = loss_fn(model(batch[0]), batch[1])
            {body}
            return loss
    """)
    assert f.train_step is not None and f.train_step.site == "/m.py:5"
    assert f.train_step_zero_grad is zeroes


def test_no_train_step_means_nothing_to_flag() -> None:
    f = facts("x = 1\n")
    assert f.train_step is None and f.train_step_zero_grad


@pytest.mark.parametrize("body, after", [
    (["loss.backward()", "clip_grad_norm_(model.parameters(), 1.0)", "optimizer.step()"], False),
    (["loss.backward()", "optimizer.step()", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"], True),
    (["loss.backward()", "opt.step()", "nn.utils.clip_grad_value_(model.parameters(), 0.5)"], True),
    (["loss.backward()", "clip_grad_norm_(ps, 1)", "opt.step()", "scheduler.step()"], False),
])
def test_clipping_after_the_step(body: list[str], after: bool) -> None:
    lines = "\n".join("        " + b for b in body)
    f = facts(f"for batch in loader:\n    if True:\n{lines}\n")
    assert bool(f.clip_after_step) is after


def test_clipping_in_the_next_iteration_after_backward_is_fine() -> None:
    assert not facts("""
        for batch in loader:
            optimizer.step()
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
    """).clip_after_step


@pytest.mark.parametrize("call, factor", [
    ("StepLR(opt, step_size=1, gamma=0.1)", 1e-30),
    ("torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)", 0.125),
    ("ExponentialLR(opt, gamma=0.5)", 0.5 ** 30),
    ("lr_scheduler.MultiStepLR(opt, milestones=[10, 20, 40], gamma=0.1)", 1e-2),
])
def test_scheduler_factor_after_thirty_steps(call: str, factor: float) -> None:
    [(where, got)] = facts(f"s = {call}\n").schedulers
    assert got == pytest.approx(factor) and where.site == "/m.py:1" and where.detail == call


def test_scheduler_with_computed_arguments_is_not_guessed() -> None:
    assert facts("s = StepLR(opt, step_size=args.step, gamma=args.gamma)\n").schedulers == []


def test_attribute_lines_point_at_the_assignment() -> None:
    f = facts("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = [nn.Linear(4, 4)]
                self.w: torch.Tensor = torch.zeros(3, requires_grad=True)
    """)
    assert f.attribute_lines[("Net", "blocks")] == 5 and f.attribute_lines[("Net", "w")] == 6


def test_source_unavailable_says_why(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="not a Python source file"):
        read_source(str(tmp_path / "model.pyc"))
    with pytest.raises(SourceUnavailable, match="cannot be read"):
        read_source(str(tmp_path / "missing.py"))


def test_construction_sites_are_the_target_lines_and_init_is_restored(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(textwrap.dedent("""\
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)
                self.seq = nn.Sequential(
                    nn.ReLU(),
                )

        def build():
            return Net()
    """))
    original = nn.Module.__init__
    sites = Sites(str(target))
    code = compile(target.read_text(), str(target), "exec")
    scope: dict = {}
    with record_sites(sites):
        exec(code, scope)  # noqa: S102 - the test's own file, as the target loader would import it
        model = scope["build"]()
    assert nn.Module.__init__ is original
    assert split_site(sites.of(model)) == (str(target), 12)  # where Net() is called, not its super().__init__
    assert split_site(sites.of(model.fc)) == (str(target), 6)
    assert split_site(sites.of(model.seq)) == (str(target), 7)
    assert split_site(sites.of(model.seq[0])) == (str(target), 8)
    assert sites.of(nn.Linear(1, 1)) is None  # built after recording stopped, elsewhere


def test_recording_restores_init_when_the_model_raises(tmp_path: Path) -> None:
    original = nn.Module.__init__
    with pytest.raises(ValueError):
        with record_sites(Sites(str(tmp_path / "m.py"))):
            raise ValueError("user code failed")
    assert nn.Module.__init__ is original
    torch.nn.Linear(2, 2)  # still constructs
