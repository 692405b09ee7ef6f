"""`# doctor: ignore[...]` comments: line and file suppressions, counted, and stale ones reported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doctor.metrics import Metrics, ProbeRecord, ProbeStatus
from doctor.render import render
from doctor.report import Finding, Location, Report, Severity, Status
from doctor.suppress import apply, scan

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {"dead-relu", "nan-loss", "init-loss", "class-imbalance"}

MODEL = textwrap.dedent('''\
    """A model file."""
    import torch
    from torch import nn

    def build_model():
        return nn.Sequential(
            nn.Linear(8, 64),
            nn.ReLU(),  # doctor: ignore[dead-relu]
            nn.Linear(64, 64),
            nn.ReLU(),  # doctor: ignore[dead-relu, init-loss]
            nn.Linear(64, 2),
        )

    NOTE = "# doctor: ignore[nan-loss] inside a string is not a comment"
    ''')


def finding(rule: str, file: str | None = None, line: int | None = None, module: str | None = None) -> Finding:
    return Finding(rule=rule, symptom="dead_relu", severity=Severity.warning, message=f"{rule} fired",
                   location=Location(module=module, file=file, line=line))


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_scan_reads_real_comments_only(model: Path) -> None:
    found = scan(str(model))
    assert [(s.line, s.kind, s.rules) for s in found] == [(8, "line", ["dead-relu"]),
                                                           (10, "line", ["dead-relu", "init-loss"])]


def test_a_line_comment_silences_the_finding_constructed_on_that_line(model: Path) -> None:
    fs = [finding("dead-relu", str(model), 8, "1"), finding("dead-relu", str(model), 7, "0"),
          finding("nan-loss")]
    out = apply(fs, str(model), KNOWN, decided={"dead-relu", "nan-loss", "init-loss"})
    assert [f.location.module for f in out.suppressed] == ["1"]
    assert out.suppressed[0].suppressed_by.endswith("model.py:8")
    assert [(f.rule, f.location.line) for f in out.active] == [("dead-relu", 7), ("nan-loss", None)]
    # Line 10 silenced nothing although both its rules were evaluated: reported, naming both.
    (note,) = out.notes
    assert note.line == 10 and note.rules == ["dead-relu", "init-loss"] and "unused" in note.problem


def test_relative_finding_paths_resolve_against_the_target_folder(model: Path, monkeypatch) -> None:
    monkeypatch.chdir(model.parent.parent)
    out = apply([finding("dead-relu", "model.py", 8, "1")], str(model), KNOWN, decided={"dead-relu"})
    assert len(out.suppressed) == 1


def test_an_unevaluated_rule_is_not_called_unused(model: Path) -> None:
    out = apply([finding("dead-relu", str(model), 8, "1")], str(model), KNOWN, decided={"dead-relu"})
    # init-loss was skipped (not measured): its comment on line 10 cannot be judged; dead-relu's can.
    assert [(n.line, n.rules) for n in out.notes] == [(10, ["dead-relu"])]


def test_file_level_suppression_and_bad_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("# doctor: ignore-file[nan-loss]\n# doctor: ignore-file[no-such-rule]\nx = 1  # doctor: ignore\n")
    fs = [finding("nan-loss"), finding("dead-relu", module="3")]
    out = apply(fs, str(path), KNOWN, decided={"nan-loss", "dead-relu"})
    assert [f.rule for f in out.suppressed] == ["nan-loss"] and [f.rule for f in out.active] == ["dead-relu"]
    problems = {n.line: n.problem for n in out.notes}
    assert "unknown rule" in problems[2] and "no-such-rule" in problems[2]
    assert "names no rule" in problems[3]
    assert 1 not in problems


def test_the_report_counts_and_shows_them() -> None:
    r = Report(status=Status.clean, target="m.py", suppressed=[finding("dead-relu", "m.py", 8, "1").model_copy(
        update={"suppressed_by": "m.py:8"})])
    assert "Suppressed (1)" in render(r, "text") and "m.py:8" in render(r, "text")
    assert "1 suppressed" in render(r, "markdown")
    data = json.loads(render(r, "json"))
    assert data["suppressed"][0]["suppressed_by"] == "m.py:8" and data["findings"] == []
    assert data["suppressed_count"] == 1


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64}}
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    path = tmp_path / "metrics.json"
    path.write_text(m.model_dump_json())
    return path


def doctor(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_file_suppression_is_counted_and_changes_the_exit_code(tmp_path: Path, saved: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text("# doctor: ignore-file[dead-relu]\n# doctor: ignore-file[invalid-values]\nimport torch\n")
    proc = doctor("check", target, "--metrics", saved, "--format", "json", "--fail-on", "warning")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["findings"] == []
    assert [f["rule"] for f in report["suppressed"]] == ["dead-relu"]
    assert report["suppressed"][0]["suppressed_by"].endswith("model.py:1")
    # invalid-values was evaluated and passed: that comment is stale, and said so (without failing).
    (note,) = report["unused_suppressions"]
    assert note["line"] == 2 and note["rules"] == ["invalid-values"]
    assert "1 finding suppressed" in proc.stderr and "note:" in proc.stderr and "model.py:2" in proc.stderr
    target.write_text("import torch\n")
    assert doctor("check", target, "--metrics", saved, "-q", "--fail-on", "warning").returncode == 1


def test_cli_line_suppression_at_the_layer_the_collector_located(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(MODEL)
    m = json.loads(Metrics(target=str(target)).model_dump_json())
    m["scalars"].update({"setup.lr": 1e-3})
    m["layers"] = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64},
                   "3": {"act.kind": "relu", "act.dead_frac": 0.9, "act.units": 64}}
    # Where the collector found each layer built: nn.ReLU() of layer "1" on line 8 carries the comment.
    m["layer_sites"] = {"1": f"{target}:8", "3": f"{target}:12"}
    saved = tmp_path / "metrics.json"
    saved.write_text(json.dumps(m))
    proc = doctor("check", target, "--metrics", saved, "--format", "json", "-q")
    report = json.loads(proc.stdout)
    assert [(f["rule"], f["location"]["module"]) for f in report["findings"]] == [("dead-relu", "3")]
    assert [(f["location"]["module"], f["location"]["line"]) for f in report["suppressed"]] == [("1", 8)]
    assert report["suppressed_count"] == 1
    # Line 10's comment names dead-relu, which was evaluated but fired elsewhere: it is stale.
    assert [(n["line"], n["rules"]) for n in report["unused_suppressions"]] == [(10, ["dead-relu"])]
