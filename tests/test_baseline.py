"""Baselines: record today's findings, then fail only on new ones and report the ones that went away."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doctor import baseline
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus
from doctor.report import Finding, Location, Severity

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def metrics(tmp: Path, dead: dict[str, float], name: str) -> Path:
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {k: {"act.kind": "relu", "act.dead_frac": v, "act.units": 64} for k, v in dead.items()}
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    path = tmp / name
    path.write_text(m.model_dump_json())
    return path


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text("import torch\n")
    return tmp_path


def test_write_then_gate_only_on_new_findings(project: Path) -> None:
    before = metrics(project, {"1": 0.8, "3": 0.0}, "before.json")
    after = metrics(project, {"1": 0.8, "3": 0.9}, "after.json")  # layer 3 died since
    fixed = metrics(project, {"1": 0.0, "3": 0.0}, "fixed.json")
    target, base = project / "model.py", project / "doctor-baseline.json"
    common = ("--fail-on", "warning", "--format", "json")

    assert doctor("check", target, "--metrics", before, *common).returncode == 1
    wrote = doctor("check", target, "--metrics", before, *common, "--write-baseline", base)
    assert wrote.returncode == 0, wrote.stderr
    assert "wrote 1 finding to baseline" in wrote.stderr
    data = json.loads(base.read_text())
    (entry,) = data["entries"]
    assert entry["rule"] == "dead-relu" and entry["subject"] == "1" and entry["target"] == "model.py"
    assert set(entry) == {"fingerprint", "rule", "subject", "target"}  # no line: edits above the layer do not churn it

    same = doctor("check", target, "--metrics", before, *common, "--baseline", base)
    assert same.returncode == 0
    report = json.loads(same.stdout)
    assert report["status"] == "clean"
    assert [f["baseline"] for f in report["findings"]] == ["unchanged"]
    assert report["baseline"]["known"] == 1 and report["baseline"]["new"] == 0

    new = doctor("check", target, "--metrics", after, *common, "--baseline", base)
    assert new.returncode == 1
    report = json.loads(new.stdout)
    state = {f["location"]["module"]: f["baseline"] for f in report["findings"]}
    assert state == {"1": "unchanged", "3": "new"}
    assert "1 known, 1 new, 0 no longer occur" in new.stderr

    gone = doctor("check", target, "--metrics", fixed, *common, "--baseline", base)
    assert gone.returncode == 0
    report = json.loads(gone.stdout)
    assert [(e["rule"], e["subject"]) for e in report["baseline"]["absent"]] == [("dead-relu", "1")]
    assert "1 no longer occur" in gone.stderr
    text = doctor("check", target, "--metrics", fixed, "--baseline", base).stdout
    assert "gone: dead-relu 1" in text


def test_the_baseline_works_from_another_working_directory(project: Path) -> None:
    m = metrics(project, {"1": 0.8}, "m.json")
    base = project / "ci" / "baseline.json"
    assert doctor("check", project / "model.py", "--metrics", m, "--write-baseline", base).returncode == 0
    proc = doctor("check", "model.py", "--metrics", m, "--fail-on", "warning", "--baseline", base, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(base.read_text())["entries"][0]["target"] == "../model.py"


def test_entries_of_other_targets_are_kept_and_not_reported(project: Path) -> None:
    m = metrics(project, {"1": 0.8}, "m.json")
    (project / "other.py").write_text("import torch\n")
    base = project / "b.json"
    doctor("check", project / "model.py", "--metrics", m, "--write-baseline", base)
    doctor("check", project / "other.py", "--metrics", m, "--write-baseline", base)
    assert sorted(e["target"] for e in json.loads(base.read_text())["entries"]) == ["model.py", "other.py"]
    clean = metrics(project, {"1": 0.0}, "clean.json")
    report = json.loads(doctor("check", project / "model.py", "--metrics", clean, "--format", "json",
                               "--baseline", base).stdout)
    assert [e["target"] for e in report["baseline"]["absent"]] == ["model.py"]


def test_a_missing_or_malformed_baseline_is_exit_2(project: Path) -> None:
    m = metrics(project, {"1": 0.8}, "m.json")
    missing = doctor("check", project / "model.py", "--metrics", m, "--baseline", project / "nope.json")
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "--write-baseline" in missing.stderr
    bad = project / "bad.json"
    bad.write_text('{"entries": [{"rule": 3}]}')
    proc = doctor("check", project / "model.py", "--metrics", m, "--baseline", bad)
    assert proc.returncode == 2 and "not a doctor baseline" in proc.stderr and "Traceback" not in proc.stderr
    before = bad.read_text()
    over = doctor("check", project / "model.py", "--metrics", m, "--write-baseline", bad)
    assert over.returncode == 2 and bad.read_text() == before  # never overwrite what we cannot read


def test_fingerprint_is_rule_and_subject_only() -> None:
    a = Finding(rule="dead-relu", symptom="dead_relu", severity=Severity.warning, message="80% dead",
                location=Location(module="layer1.0.relu", file="m.py", line=10))
    b = a.model_copy(update={"message": "90% dead", "location": Location(module="layer1.0.relu", file="m.py", line=99)})
    c = a.model_copy(update={"location": Location(module="layer2.0.relu")})
    d = a.model_copy(update={"rule": "saturated-activation"})
    baseline.assign([a, b, c, d])
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3
    klass = Finding(rule="empty-class", symptom="class_imbalance", severity=Severity.warning, message="m",
                    location=Location(label="3"))
    assert baseline.subject(klass) == "class 3"
