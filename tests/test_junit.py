"""JUnit XML: a testcase per rule (passed, failed, skipped), failures agreeing with the exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from doctor.metrics import Metrics, ProbeRecord, ProbeStatus
from doctor.render.junit import render_junit
from doctor.report import ErrorRecord, Finding, Location, Report, Severity, Status

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Data statistics and activations only: dead-relu fires, invalid-values passes, training rules are skipped."""
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64}}
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran),
                ProbeRecord(name="train_val", status=ProbeStatus.skipped, reason="no validation data")]
    path = tmp_path_factory.mktemp("junit") / "metrics.json"
    path.write_text(m.model_dump_json())
    return path


def cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {c.get("name"): c for c in root.iter("testcase")}


def test_a_testcase_per_rule_with_real_states(saved: Path) -> None:
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", "junit", "-q", "--fail-on", "warning")
    assert proc.returncode == 1
    root = ET.fromstring(proc.stdout)
    got = cases(proc.stdout)
    listed = json.loads(doctor("rules", "--format", "json").stdout)
    # Every rule, but those that judge TensorBoard logs only.
    assert set(got) == {r["id"] for r in listed if r["family"] != "run"}
    dead = got["dead-relu"]
    failure = dead.find("failure")
    assert failure is not None and failure.get("type") == "warning" and "80%" in failure.get("message")
    assert "fix:" in failure.text
    assert dead.get("classname") == "doctor.dynamics"
    passed = got["invalid-values"]
    assert list(passed) == []  # no failure, no skipped: it passed
    skipped = got["overfitting"].find("skipped")
    assert skipped is not None and "not measured" in skipped.get("message")
    suite = root.find("testsuite")
    n_fail = sum(1 for c in got.values() if c.find("failure") is not None)
    n_skip = sum(1 for c in got.values() if c.find("skipped") is not None)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (str(len(got)), str(n_fail), str(n_skip))
    assert n_fail == 1 and n_skip >= 3


def test_findings_below_fail_on_do_not_fail_the_testcase(saved: Path) -> None:
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", "junit", "-q")  # fail-on error
    assert proc.returncode == 0
    dead = cases(proc.stdout)["dead-relu"]
    assert dead.find("failure") is None
    assert "below --fail-on error" in dead.find("system-out").text


def test_a_target_that_could_not_run_is_an_error_case() -> None:
    r = Report(status=Status.failed, target="t.py",
               errors=[ErrorRecord(kind="load", message="import failed", hint="fix the import")],
               findings=[Finding(rule="nan-loss", symptom="nan_loss", severity=Severity.error, message="NaN",
                                 location=Location(file="t.py", line=3))])
    got = cases(render_junit(r))
    err = got["run target"].find("error")
    assert err is not None and err.get("message") == "import failed" and "fix the import" in err.text
    assert got["nan-loss"].find("failure") is not None
    root = ET.fromstring(render_junit(r))
    assert root.get("errors") == "1" and root.get("failures") == "1" and root.get("tests") == "2"


def test_xml_escapes_user_text() -> None:
    r = Report(status=Status.findings, target="a<b>&.py", findings=[
        Finding(rule="dead-relu", symptom="dead_relu", severity=Severity.error, message='x < y & "z"',
                location=Location(module="blocks.<script>"))])
    got = cases(render_junit(r))
    assert got["dead-relu"].find("failure").get("message") == 'x < y & "z"'
