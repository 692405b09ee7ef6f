"""The CLI's judging and output paths, on saved metrics (no training run): formats, exit codes, rule tooling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doctor.metrics import Metrics, ProbeRecord, ProbeStatus, Series

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Metrics with one warning-level symptom (dead ReLU in one layer) and one error (NaN in the data)."""
    m = Metrics(target="model.py")
    m.scalars.update({
        "setup.lr": 1e-3, "setup.num_outputs": 4, "data.input_nonfinite_frac": 0.01,
        "data.target_nonfinite_frac": 0.0, "data.feature_mean_abs_max": 0.1, "data.feature_std_max": 1.0,
        "data.feature_scale_ratio": 1.2,
    })
    m.layers = {"0": {"grad.norm": 0.5}, "1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64},
                "3": {"act.kind": "relu", "act.dead_frac": 0.0, "act.units": 64}}
    m.series["act.dead_frac_by_layer"] = Series(x=["1", "3"], y=[0.8, 0.0], reference=0.5)
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran),
                ProbeRecord(name="activation_health", status=ProbeStatus.ran),
                ProbeRecord(name="train_val", status=ProbeStatus.skipped, reason="no validation data")]
    path = tmp_path_factory.mktemp("saved") / "metrics.json"
    path.write_text(m.model_dump_json())
    return path


def test_exit_codes_follow_fail_on(saved: Path) -> None:
    assert doctor("check", "model.py", "--metrics", str(saved), "-q").returncode == 1  # an error finding
    assert doctor("check", "model.py", "--metrics", str(saved), "-q", "--fail-on", "never").returncode == 0
    only_warning = ("--ignore", "invalid-values")
    assert doctor("check", "model.py", "--metrics", str(saved), "-q", *only_warning).returncode == 0
    assert doctor("check", "model.py", "--metrics", str(saved), "-q", *only_warning,
                  "--fail-on", "warning").returncode == 1


def test_json_is_machine_output_on_stdout(saved: Path) -> None:
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", "json")
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1 and report["status"] == "findings"
    rules = [f["rule"] for f in report["findings"]]
    assert rules == ["invalid-values", "dead-relu"]  # most severe first
    dead = report["findings"][1]
    assert dead["location"]["module"] == "1" and dead["symptom"] == "dead_relu"
    assert dead["causes"] and all("fixes" in c for c in dead["causes"])
    assert {p["name"]: p["status"] for p in report["probes"]}["train_val"] == "skipped"
    assert "doctor:" in proc.stderr  # the human summary goes to stderr


@pytest.mark.parametrize("fmt,marker", [("text", "dead-relu"), ("markdown", "# "), ("html", "<svg")])
def test_every_format_renders(saved: Path, fmt: str, marker: str) -> None:
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", fmt, "-q")
    assert proc.returncode == 1 and marker in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour when stdout is not a terminal


def test_output_dir_writes_every_report(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    doctor("check", "model.py", "--metrics", str(saved), "--output-dir", str(out), "-q")
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.md", "report.json", "metrics.json"}
    html = (out / "report.html").read_text()
    assert "dead-relu" in html and "<svg" in html and "https://" not in html
    assert Metrics.model_validate_json((out / "metrics.json").read_text()).layers["1"]["act.dead_frac"] == 0.8


def test_select_and_unknown_rule(saved: Path) -> None:
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", "json", "--select", "dead-relu")
    assert [f["rule"] for f in json.loads(proc.stdout)["findings"]] == ["dead-relu"]
    bad = doctor("check", "model.py", "--metrics", str(saved), "--select", "no-such-rule")
    assert bad.returncode == 2 and "no-such-rule" in bad.stderr and "Traceback" not in bad.stderr


def test_user_rule_directory_end_to_end(saved: Path, tmp_path: Path) -> None:
    rules = tmp_path / "myrules"
    rules.mkdir()
    (rules / "wide-dead-layer.yaml").write_text(textwrap.dedent("""\
        id: wide-dead-layer
        symptom: dead_relu
        severity: info
        title: A wide layer has dead units
        scope: layer
        params: {units: 32}
        when: act.units >= units and act.dead_frac > 0.1
        message: "{layer} has {act.units} units, {act.dead_frac:.0%} dead."
        causes:
          - id: too-wide
            text: The layer may be wider than the task needs.
            fixes: [Try a narrower layer.]
        evidence: [act.dead_frac_by_layer]
        references: []
        doc:
          what: Flags wide layers with dead units.
          why: A team convention.
          example: nn.Linear(10, 512)
          instead: nn.Linear(10, 64)
        """))
    proc = doctor("check", "model.py", "--metrics", str(saved), "--format", "json", "--rules-dir", str(rules))
    found = [f for f in json.loads(proc.stdout)["findings"] if f["rule"] == "wide-dead-layer"]
    assert len(found) == 1 and found[0]["message"] == "1 has 64 units, 80% dead."
    assert "wide-dead-layer" in doctor("rules", "--rules-dir", str(rules)).stdout


def test_malformed_user_rule_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(
        "id: typo\nsymptom: dead_relu\nseverity: warning\ntitle: t\nwhen: act.dead_fracc > 0.5\nmessage: m\n"
        "causes: []\nevidence: []\nreferences: []\ndoc: {what: a, why: b, example: c, instead: d}\n")
    proc = doctor("check", "fixtures/healthy_mlp_classifier.py", "--rules-dir", str(tmp_path))
    assert proc.returncode == 2
    assert f"{tmp_path / 'typo.yaml'}:5" in proc.stderr and "act.dead_frac" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rules_and_explain() -> None:
    listing = doctor("rules")
    assert listing.returncode == 0 and "vanishing-gradients" in listing.stdout and "warning" in listing.stdout
    text = doctor("explain", "vanishing-gradients").stdout
    assert "1e-3" in text or "0.001" in text
    assert "nn.Sigmoid" in text  # the example that triggers it
    assert doctor("explain", "nope").returncode == 2


def test_bad_usage_is_exit_2() -> None:
    assert doctor("check").returncode == 2
    assert doctor("check", "x.py", "--budget", "huge").returncode == 2
    assert doctor().returncode == 2


def test_help_does_not_import_torch() -> None:
    code = "import sys; from doctor.cli import main; main(['rules']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert out.strip().endswith("False")


def test_rules_table_and_json() -> None:
    table = doctor("rules").stdout.splitlines()
    assert table[0].split() == ["rule", "severity", "scope", "family", "symptom", "title"]
    rows = json.loads(doctor("rules", "--format", "json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert by_id["dead-relu"]["params"] == {"dead_frac": 0.5} and by_id["dead-relu"]["scope"] == "layer"
    assert by_id["loss-diverging"]["family"] == "run"
    assert {"id", "title", "symptom", "severity", "default_severity", "family", "needs", "source"} <= set(rows[0])
    assert len(table) == len(rows) + 2  # header and rule line


def test_rules_listing_follows_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "doctor.toml").write_text('[severity]\ndead-relu = "error"\n')
    proc = subprocess.run([sys.executable, "-m", "doctor", "rules", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    dead = next(r for r in json.loads(proc.stdout) if r["id"] == "dead-relu")
    assert (dead["severity"], dead["default_severity"]) == ("error", "warning")


def test_explain_says_how_to_override_and_which_fixtures_show_it() -> None:
    text = doctor("explain", "dead-relu").stdout
    assert "What it checks" in text and "Likely causes" in text
    assert "[tool.doctor.params.dead-relu]" in text and "dead_frac = 0.5" in text
    assert "[tool.doctor.severity]" in text and "# doctor: ignore[dead-relu]" in text
    section = text.split("Fixtures that show it", 1)[1]
    assert "fixtures/dead_relu.py" in section and "healthy" not in section.split("Defined in")[0]
    assert text.rstrip().splitlines()[-1].startswith("Defined in ")
    # An info-level rule is named on its fixture's `info:` line.
    assert "fixtures/structure_redundant_bias.py" in doctor("explain", "redundant-bias").stdout
    # A rule no fixture names has no such section (nor does an installed package without fixtures/).
    assert "Fixtures that show it" not in doctor("explain", "unstable-loss").stdout


def test_user_rule_works_with_config_params_and_explain(saved: Path, tmp_path: Path) -> None:
    rules = tmp_path / "team"
    rules.mkdir()
    (rules / "many-dead.yaml").write_text(textwrap.dedent("""\
        id: many-dead
        symptom: dead_relu
        severity: info
        title: Several dead layers
        params: {layers: 1}
        when: act.dead_layers >= layers
        message: "{act.dead_layers} dead layers"
        doc: {what: counts dead layers, why: team rule, example: x, instead: y}
        """))
    m = Metrics.model_validate_json(saved.read_text())
    m.scalars["act.dead_layers"] = 1
    metrics = tmp_path / "m.json"
    metrics.write_text(m.model_dump_json())
    cfg = tmp_path / "doctor.toml"
    cfg.write_text('rules-dirs = ["team"]\n[params.many-dead]\nlayers = 2\n[severity]\nmany-dead = "error"\n')
    quiet = doctor("check", "model.py", "--metrics", str(metrics), "--config", str(cfg), "--format", "json", "-q")
    assert "many-dead" not in [f["rule"] for f in json.loads(quiet.stdout)["findings"]]
    cfg.write_text('rules-dirs = ["team"]\n[severity]\nmany-dead = "error"\n')
    fired = doctor("check", "model.py", "--metrics", str(metrics), "--config", str(cfg), "--format", "sarif", "-q")
    result = next(r for r in json.loads(fired.stdout)["runs"][0]["results"] if r["ruleId"] == "many-dead")
    assert result["level"] == "error" and fired.returncode == 1
    assert "layers = 1" in doctor("explain", "many-dead", "--rules-dir", str(rules)).stdout
