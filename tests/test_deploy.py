"""--deploy: export, eval-mode health, int8/bf16 drift and inference cost, through the CLI and probe by probe.

The fault and healthy fixtures of each deploy rule run in tests/test_fixtures.py (their `flags: --deploy` header);
here: the figures reach JSON, HTML and Markdown, the family stays off without the flag, a failed export points at
the user's line, and every deploy probe leaves the model as it found it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_doctor
from doctor.collect.budget import BUDGETS
from doctor.collect.context import prepare
from doctor.collect.deploy import TRAINED, eval_mode
from doctor.collect.probes import deploy_cost, deploy_eval, deploy_export, deploy_quant
from doctor.collect.target import load_target
from doctor.metrics import Metrics

DEPLOY_PROBES = ("deploy_export", "deploy_onnx", "deploy_cost", "deploy_eval", "deploy_int8", "deploy_bf16")


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("deploy")
    proc = run_doctor("check", "examples/digits_cnn.py", "--deploy", "--budget", "quick", "--output-dir", out,
                      "--format", "json", "-q", timeout=300)
    assert proc.stdout, proc.stderr[-2000:]
    return json.loads(proc.stdout), out


def test_the_json_carries_the_export_drift_and_latency_figures(example) -> None:
    report, _ = example
    d = report["setup"]["deploy"]
    assert d["params"] == 38378 and 0.1 < d["size_mb"] < 0.2
    assert d["latency_b1_ms"] > 0 and d["latency_batch_ms"] > 0 and d["batch_size"] == 64 and d["repeats"] >= 5
    assert d["device"] == "cpu" and d["weights"] == "trained"
    assert d["export"] == "ok" and d["export_max_diff"] is not None and "matches" in d["export_second_batch"]
    assert d["metric"] == "accuracy" and d["int8_out_err"] < 0.1 and d["bf16_out_err"] < 0.1
    assert d["int8_layers"] and d["bf16_layers"]
    ran = {p["name"]: p for p in report["probes"]}
    for name in DEPLOY_PROBES:
        assert name in ran, name
    assert all(ran[n]["status"] == "ran" for n in DEPLOY_PROBES if n != "deploy_onnx")
    if importlib.util.find_spec("onnx") is None:
        assert ran["deploy_onnx"]["status"] == "skipped" and "onnx is not installed" in ran["deploy_onnx"]["reason"]
    assert not {f["rule"] for f in report["findings"]} & {"export-fails", "export-mismatch", "eval-nondeterministic",
                                                           "int8-quantisation-drift", "bf16-precision-drift"}


def test_html_and_markdown_list_export_drift_and_latency(example) -> None:
    _, out = example
    html = (out / "report.html").read_text()
    section = html[html.index("deployment readiness"):html.index('id="findings"')]
    for label in ("Parameters", "Size on disk", "Latency, batch 1", "Latency, batch 64", "torch.export",
                  "int8 (dynamic)", "bfloat16", "Eval determinism"):
        assert label in section, label
    md = (out / "report.md").read_text()
    assert "Deployment readiness" in md and "| Latency, batch 64 |" in md and "| int8 (dynamic) |" in md


def test_without_the_flag_the_family_is_skipped_and_says_how_to_run_it() -> None:
    proc = run_doctor("check", "fixtures/deploy_healthy_mlp.py", "--budget", "quick", "--format", "json", "-q",
                      timeout=300)
    report = json.loads(proc.stdout)
    assert report["setup"].get("deploy") is None
    rec = {p["name"]: p for p in report["probes"]}
    for name in DEPLOY_PROBES:
        assert rec[name]["status"] == "skipped" and "--deploy" in rec[name]["reason"], rec[name]


def test_a_failed_export_names_the_construct_and_the_users_line() -> None:
    path = REPO / "fixtures" / "deploy_export_data_dependent_branch.py"
    proc = run_doctor("check", path, "--deploy", "--budget", "quick", "--format", "json", "-q", timeout=300)
    report = json.loads(proc.stdout)
    f = next(f for f in report["findings"] if f["rule"] == "export-fails")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "torch.isnan(h).any()" in text)
    assert f["location"]["line"] == line and f["location"]["file"].endswith(path.name)
    assert "data-dependent control flow" in f["message"] and "torch.isnan(h).any()" in f["message"]
    assert f["causes"][0]["id"] == "data-dependent-branch" and f["causes"][0]["status"] == "supported"
    assert not report["errors"]


def test_a_program_fixed_to_its_batch_size_points_at_the_line_that_fixed_it() -> None:
    """The guard torch adds when the trace pins the batch size names the line (here a loop over the batch)."""
    path = REPO / "fixtures" / "deploy_export_batch_loop.py"
    proc = run_doctor("check", path, "--deploy", "--budget", "quick", "--format", "json", "-q", timeout=300)
    report = json.loads(proc.stdout)
    f = next(f for f in report["findings"] if f["rule"] == "export-mismatch")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith("rows = "))
    assert f["location"]["line"] == line and f["location"]["module"].startswith("PerSampleMLP.forward")
    assert "rejects batch size 32" in f["message"] and f"fixed at line {line}" in f["message"]


def test_a_rule_threshold_is_configurable(tmp_path: Path) -> None:
    cfg = tmp_path / "doctor.toml"
    cfg.write_text('[params.int8-quantisation-drift]\nout_err = 1.0e-6\nmin_out_err = 1.0e-6\n')
    proc = run_doctor("check", "fixtures/deploy_healthy_mlp.py", "--deploy", "--budget", "quick", "--config", cfg,
                      "--format", "json", "-q", timeout=300)
    report = json.loads(proc.stdout)
    assert "int8-quantisation-drift" in {f["rule"] for f in report["findings"]}, proc.stderr[-2000:]


# --- the model as found -----------------------------------------------------------------------------------------

TARGET = """
import torch
from torch import nn
g = torch.Generator().manual_seed(0)
x = torch.randn(256, 8, generator=g)
y = (x[:, 0] > 0).long()
train_data = (x[:192], y[:192])
val_data = (x[192:], y[192:])
batch_size = 32

def build_model():
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
"""


def test_every_deploy_probe_leaves_the_model_as_found(tmp_path: Path) -> None:
    path = tmp_path / "target.py"
    path.write_text(textwrap.dedent(TARGET))
    setup = load_target(str(path), None, device="cpu", seed=0)
    ctx = prepare(setup, Metrics(target=str(path)), BUDGETS["quick"], torch.device("cpu"), 0)
    model = ctx.setup.model
    trained = {k: v.clone() + (0.01 if v.is_floating_point() else 0) for k, v in ctx.init_state.items()}
    ctx.cache[TRAINED] = trained
    modes = [True] * len(list(model.modules()))  # as ctx.fresh_model() hands it to every probe: train mode
    for probe in (deploy_export, deploy_cost, deploy_eval, deploy_quant):
        probe.PROBE.run(ctx)
        assert [m.training for m in model.modules()] == modes, probe.PROBE.name
        for m in model.modules():
            assert not m._forward_hooks and not m._forward_pre_hooks, probe.PROBE.name
        state = model.state_dict()
        assert all(torch.equal(state[k], trained[k]) for k in trained), probe.PROBE.name
    sc = ctx.metrics.scalars
    assert sc["deploy.weights"] == "trained" and sc["deploy.export_ok"] and sc["deploy.eval_max_diff"] == 0
    assert sc["deploy.int8_layers"] == 2 and re.match(r"\d", str(sc["deploy.int8_worst_layer"]))


def test_eval_mode_puts_back_each_modules_own_mode() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(), torch.nn.BatchNorm1d(2))
    model.train()
    model[2].eval()  # frozen statistics: put back as it was, not as model.train() would
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, True, False]


class _Box:  # an output type export cannot flatten
    def __init__(self, t):
        self.t = t


class _Branch(torch.nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


class _Boxed(torch.nn.Module):
    def forward(self, x):
        return _Box(x * 2)


class _NumPy(torch.nn.Module):
    def forward(self, x):
        return torch.from_numpy((x * 2).numpy())


@pytest.mark.parametrize(("module", "kind"), [(_Branch, "data_dependent"), (_Boxed, "non_tensor_output"),
                                              (_NumPy, "numpy")])
def test_an_export_failure_is_named_by_its_construct(module, kind) -> None:
    from doctor.collect.deploy import export as ex

    with pytest.raises(Exception) as caught:
        ex.export(module().eval(), torch.randn(4, 3))
    fail = ex.failure(caught.value, "torch.export", __file__)
    assert fail.kind == kind, fail
    assert fail.line is None or fail.file.endswith("test_deploy.py")
