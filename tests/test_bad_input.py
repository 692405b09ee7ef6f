"""Bad input that doctor must handle (DESIGN §6): each gets a clear message, and the other probes still run.

In process for the mechanics (output picking, dict batches, out-of-memory retries), through the real
command line for what the user sees. Out-of-memory errors are simulated: these tests run on CPUs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from conftest import REPO, run_doctor
from doctor.collect import data as datamod
from doctor.collect.budget import BUDGETS
from doctor.collect.context import model_output, pick_output, prepare
from doctor.collect.probes import Probe
from doctor.collect.target import TargetError, TrainingSetup
from doctor.collect.worker import _run_shrinking
from doctor.metrics import Metrics

CPU = torch.device("cpu")
QUICK = ("--budget", "quick", "--format", "json", "-q")


def no_traceback(r: subprocess.CompletedProcess) -> None:
    text = r.stdout + r.stderr
    assert "Traceback" not in text and 'File "' not in text, text[-2000:]


def data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def prep(model: nn.Module, train=None, **kw):
    setup = TrainingSetup(path="inline.py", model=model, train_data=train if train is not None else data(),
                          batch_size=kw.pop("batch_size", 32), names={"train_data": "train_data"}, **kw)
    metrics = Metrics()
    return prepare(setup, metrics, BUDGETS["quick"], CPU, 0), metrics


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["probes"]}


# --- a loss that returns a non-scalar ---------------------------------------------------------------------------

def test_non_scalar_loss_is_named_and_the_data_probes_still_run():
    r = run_doctor("check", REPO / "fixtures" / "broken" / "loss_not_scalar.py", *QUICK)
    assert r.returncode == 3
    no_traceback(r)
    report = json.loads(r.stdout)
    assert "returned a tensor of shape (16,), not a scalar tensor" in report["errors"][0]["message"]
    p = probes(report)
    assert p["data_stats"]["status"] == "ran" and p["data_constant"]["status"] == "ran"
    assert p["gradient_flow"]["status"] == "skipped" and "loss raised" in p["gradient_flow"]["reason"]


# --- a model that returns a tuple or a dict ---------------------------------------------------------------------

class _Returns(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.body, self.head = nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, x):
        h = self.body(x).relu()
        out = self.head(h)
        if self.kind == "tuple":
            return out, h
        if self.kind == "dict":
            return {"hidden": h, "logits": out}
        if self.kind == "dict-unnamed":
            return {"scores": out, "hidden": h}
        return {"loss": None, "extra": "text"}


@pytest.mark.parametrize("kind,picked", [
    ("tuple", "element 0 of the 2-element tuple"),
    ("dict", "the 'logits' entry of the dict"),
    ("dict-unnamed", "the 'scores' entry (its first tensor) of the dict"),
])
def test_structured_outputs_are_reduced_to_one_tensor_and_the_report_says_which(kind, picked):
    model = _Returns(kind)
    ctx, metrics = prep(model)
    assert ctx.broken is None and ctx.num_outputs == 3
    assert model_output(model, torch.randn(4, 8)).shape == (4, 3)
    assert any(picked in note for note in metrics.setup.notes), metrics.setup.notes


def test_an_output_without_any_tensor_is_a_clear_error():
    with pytest.raises(TargetError, match="returned a dict with keys loss, extra and no tensor among them"):
        pick_output(_Returns("nothing")(torch.randn(2, 8)))


# --- a data loader that yields dicts ----------------------------------------------------------------------------

class _Dicts(Dataset):
    def __init__(self, keys: tuple[str, str]) -> None:
        self.x, self.y = data()
        self.keys = keys

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i], "attention_mask": torch.ones(8)}


@pytest.mark.parametrize("keys", [("pixel_values", "labels"), ("input", "target"), ("x", "y"), ("Image", "Label")])
def test_dict_batches_with_recognisable_keys_are_read(keys):
    ctx, metrics = prep(nn.Sequential(nn.Linear(8, 3)), DataLoader(_Dicts(keys), batch_size=32))
    x, y = ctx.train_batches[0]
    assert x.shape == (32, 8) and y.shape == (32,) and ctx.broken is None
    note = next(n for n in metrics.setup.notes if "yields dicts" in n)
    assert f"inputs from '{keys[0]}', targets from '{keys[1]}'" in note and "'attention_mask'" in note


def test_a_custom_step_is_told_it_gets_pairs_only_when_the_loader_yields_dicts():
    def step(model, batch, loss_fn, optimizer):
        return loss_fn(model(batch[0]), batch[1])

    pairs = "receives each batch as an (inputs, targets) pair"
    _, metrics = prep(nn.Sequential(nn.Linear(8, 3)), DataLoader(_Dicts(("x", "y")), batch_size=32), train_step=step)
    assert any(pairs in n for n in metrics.setup.notes), metrics.setup.notes
    _, metrics = prep(nn.Sequential(nn.Linear(8, 3)), train_step=step)  # plain (inputs, targets) tensors
    assert not any(pairs in n for n in metrics.setup.notes), metrics.setup.notes


def test_dict_batches_with_unknown_keys_name_what_they_hold():
    with pytest.raises(TargetError) as err:
        datamod.as_batch({"pixels": torch.zeros(2), "klass": torch.zeros(2)}, name="train_loader")
    assert "train_loader yields dicts with keys 'pixels', 'klass'; doctor found no inputs" in str(err.value)
    assert "pixel_values" in err.value.hint and "labels" in err.value.hint
    with pytest.raises(TargetError, match="'label' a list"):
        datamod.as_batch({"image": torch.zeros(2), "label": [1, 2]}, name="train_loader")


def test_unknown_dict_keys_through_the_command_line():
    r = run_doctor("check", REPO / "fixtures" / "bad_dict_keys.py", *QUICK)
    assert r.returncode == 3
    no_traceback(r)
    err = json.loads(r.stdout)["errors"][0]
    assert "yields dicts with keys 'pixels', 'klass'" in err["message"] and "pixel_values" in err["hint"]


# --- out of memory on the device ------------------------------------------------------------------------------------

def _oom():
    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")


class _ForwardOOM(nn.Module):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.net = limit, nn.Linear(8, 3)

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise _oom()
        return self.net(x)


def test_oom_in_the_first_forward_halves_the_batches_and_says_so():
    ctx, metrics = prep(_ForwardOOM(10), batch_size=64)
    assert ctx.broken is None
    assert all(x.shape[0] == 8 for x, _ in ctx.train_batches + ctx.val_batches)
    assert metrics.setup.batch_size == 8
    assert any("Out of device memory in the first forward pass at batch size 64" in n and "batch size 8" in n
               for n in metrics.setup.notes), metrics.setup.notes


def test_oom_at_one_sample_is_reported_as_the_forward_failing():
    ctx, _ = prep(_ForwardOOM(0), batch_size=4)
    assert ctx.broken is not None and isinstance(ctx.broken.cause, torch.OutOfMemoryError)


def test_oom_in_a_probe_retries_at_half_the_batch_size():
    ctx, metrics = prep(nn.Linear(8, 3), batch_size=64)
    seen: list[int] = []

    def run(c) -> None:
        seen.append(int(c.train_batches[0][0].shape[0]))
        if seen[-1] > 16:
            raise _oom()
        c.metrics.scalars["setup.num_params"] = 1

    assert _run_shrinking(Probe(name="hungry", doc="", run=run), ctx) == {}
    assert seen == [64, 32, 16]
    assert [n for n in metrics.setup.notes if "probe hungry" in n] == [
        "Out of device memory in probe hungry at batch size 64: it and every later probe ran at batch size 32. "
        "The measurements hold for that batch size; lower batch_size in the target to match.",
        "Out of device memory in probe hungry at batch size 32: it and every later probe ran at batch size 16. "
        "The measurements hold for that batch size; lower batch_size in the target to match."]

    def always(c) -> None:
        raise _oom()

    with pytest.raises(torch.OutOfMemoryError):
        _run_shrinking(Probe(name="hopeless", doc="", run=always), ctx)
    assert ctx.train_batches[0][0].shape[0] == 1

    def other(c) -> None:
        raise RuntimeError("not memory")

    with pytest.raises(RuntimeError, match="not memory"):
        _run_shrinking(Probe(name="other", doc="", run=other), ctx)


def test_oom_in_backward_through_the_command_line():
    r = run_doctor("check", REPO / "fixtures" / "bad_oom.py", *QUICK, timeout=300)
    no_traceback(r)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and not report["errors"], report["errors"]
    assert any("Out of device memory in probe" in n and "batch size 32" in n for n in report["setup"]["notes"])
    ran = {name for name, p in probes(report).items() if p["status"] == "ran"}
    assert {"data_stats", "init_loss", "gradient_flow", "train_val"} <= ran


# --- NaN in the data ------------------------------------------------------------------------------------------------

def test_nan_in_the_data_is_flagged_and_the_other_probes_still_run():
    r = run_doctor("check", REPO / "fixtures" / "invalid_values.py", *QUICK, timeout=300)
    no_traceback(r)
    report = json.loads(r.stdout)
    rules = {f["rule"]: f for f in report["findings"]}
    assert "invalid-values" in rules and "of input elements" in rules["invalid-values"]["message"]
    p = probes(report)
    for name in ("data_stats", "data_leakage", "data_shift", "data_constant", "init_loss", "gradient_flow",
                 "train_val"):
        assert p[name]["status"] == "ran", p[name]
    assert not report["errors"]


# --- a custom train_step that returns nothing -------------------------------------------------------------------

def test_train_step_returning_none_is_named_and_the_other_probes_still_run():
    r = run_doctor("check", REPO / "fixtures" / "broken" / "train_step_returns_none.py", *QUICK)
    assert r.returncode == 3
    no_traceback(r)
    report = json.loads(r.stdout)
    error = report["errors"][0]
    assert "train_step returned None" in error["message"] and "return loss" in error["hint"]
    p = probes(report)
    assert p["train_val"]["status"] == "failed"
    assert p["data_stats"]["status"] == p["overfit_batch"]["status"] == p["custom_step"]["status"] == "ran"
