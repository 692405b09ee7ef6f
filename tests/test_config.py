"""Configuration from [tool.doctor], doctor.toml or --config: discovery, precedence, overrides, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doctor.config import ConfigError, find, load, parse
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project folder: src/model.py (target) and saved metrics with one dead ReLU layer (a warning)."""
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64}}
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("import torch\n")
    (tmp_path / "metrics.json").write_text(m.model_dump_json())
    return tmp_path


def check(project: Path, *extra: str) -> subprocess.CompletedProcess:
    return doctor("check", project / "src" / "model.py", "--metrics", project / "metrics.json", "--format", "json",
                  "-q", *extra)


def pyproject(project: Path, body: str) -> Path:
    path = project / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n\n" + textwrap.dedent(body))
    return path


def test_found_upward_from_the_target_and_applied(project: Path) -> None:
    assert check(project).returncode == 0  # a warning; fail-on error by default
    pyproject(project, """
        [tool.doctor]
        fail-on = "warning"
        """)
    proc = check(project)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["fail_on"] == "warning"


def test_cli_flags_win(project: Path) -> None:
    pyproject(project, '[tool.doctor]\nfail-on = "warning"\n')
    assert check(project, "--fail-on", "error").returncode == 0


def test_doctor_toml_beats_pyproject_in_the_same_folder_and_a_nearer_file_wins(project: Path) -> None:
    pyproject(project, '[tool.doctor]\nfail-on = "never"\n')
    (project / "doctor.toml").write_text('fail-on = "warning"\n')
    assert find(project / "src" / "model.py") == (project / "doctor.toml").resolve()
    assert check(project).returncode == 1
    (project / "src" / "doctor.toml").write_text('fail-on = "never"\n')
    assert check(project).returncode == 0


def test_pyproject_without_a_doctor_table_is_passed_over(project: Path) -> None:
    pyproject(project, "[tool.other]\nx = 1\n")
    assert find(project / "src" / "model.py") != project / "pyproject.toml"


def test_explicit_config_file(project: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "ci.toml"
    cfg.write_text('fail-on = "warning"\n')
    assert check(project, "--config", cfg).returncode == 1
    missing = check(project, "--config", tmp_path / "nope.toml")
    assert missing.returncode == 2 and "nope.toml" in missing.stderr and "no such" in missing.stderr


def test_severity_and_params_overrides(project: Path) -> None:
    pyproject(project, """
        [tool.doctor.severity]
        dead-relu = "error"
        """)
    proc = check(project)
    assert proc.returncode == 1 and json.loads(proc.stdout)["findings"][0]["severity"] == "error"
    pyproject(project, """
        [tool.doctor.params.dead-relu]
        dead_frac = 0.9
        """)
    proc = check(project, "--fail-on", "warning")
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []


def test_select_ignore_and_rule_dirs_relative_to_the_file(project: Path) -> None:
    pyproject(project, '[tool.doctor]\nignore = ["dead-relu"]\n')
    assert json.loads(check(project).stdout)["findings"] == []
    pyproject(project, '[tool.doctor]\nselect = ["invalid-values"]\n')
    report = json.loads(check(project).stdout)
    assert report["findings"] == [] and report["rules_evaluated"] == 1
    rules = project / "team-rules"
    rules.mkdir()
    (rules / "wide-layer.yaml").write_text(textwrap.dedent("""\
        id: wide-layer
        symptom: dead_relu
        severity: error
        title: Wide layer
        scope: layer
        when: act.units >= 64
        message: "{layer} is wide"
        doc: {what: a, why: b, example: c, instead: d}
        """))
    pyproject(project, '[tool.doctor]\nrules-dirs = ["team-rules"]\n')
    proc = check(project)
    assert proc.returncode == 1 and "wide-layer" in [f["rule"] for f in json.loads(proc.stdout)["findings"]]
    # From another working directory the folder is still found next to the configuration.
    assert "wide-layer" in doctor("rules", cwd=project).stdout


def test_settings_reach_the_collector(project: Path) -> None:
    loaded = parse(pyproject(project, """
        [tool.doctor]
        budget = "quick"
        device = "cpu"
        seed = 7
        timeout = 30
        baseline = "ci/baseline.json"
        """))
    c = loaded.config
    assert (c.budget, c.device, c.seed, c.timeout) == ("quick", "cpu", 7, 30.0)
    assert loaded.baseline() == loaded.root / "ci" / "baseline.json"


@pytest.mark.parametrize("body,words", [
    ('[tool.doctor]\nfail_on = "warning"\n', ["[tool.doctor] fail_on", "unknown key", "did you mean 'fail-on'", "allowed keys"]),
    ('[tool.doctor]\nbudget = "huge"\n', ["[tool.doctor] budget", "one of quick, standard, deep", "'huge'"]),
    ('[tool.doctor]\nseed = "7"\n', ["[tool.doctor] seed", "a whole number"]),
    ('[tool.doctor]\nseed = 99999999999999999999\n', ["[tool.doctor] seed", "from 0 to 2**63 - 1"]),
    ('[tool.doctor]\ntimeout = -5\n', ["[tool.doctor] timeout", "positive number"]),
    ('[tool.doctor]\nselect = "dead-relu"\n', ["[tool.doctor] select", "list of rule ids"]),
    ('[tool.doctor.severity]\ndead-relu = "fatal"\n', ["[tool.doctor.severity] dead-relu", '"error" | "warning" | "info"']),
    ('[tool.doctor.params.dead-relu]\ndead_frac = [1]\n', ["[tool.doctor.params.dead-relu] dead_frac", "number, string or boolean"]),
    ('[tool.doctor.params.dead-relu]\ndead_fraction = 0.9\n', ["[tool.doctor.params.dead-relu]", "unknown param 'dead_fraction'", "dead_frac"]),
    ('[tool.doctor.params.dead-relu]\ndead_frac = "lots"\n', ["[tool.doctor.params.dead-relu]", "expected a number"]),
    ('[tool.doctor.severity]\ndead-relux = "error"\n', ["[tool.doctor.severity] dead-relux", "unknown rule", "dead-relu"]),
    ('[tool.doctor]\nignore = ["no-such-rule"]\n', ["[tool.doctor] ignore", "unknown rule 'no-such-rule'"]),
    ('[tool.doctor]\nrules-dirs = ["missing"]\n', ["[tool.doctor] rules-dirs", "not a directory"]),
    ('[tool.doctor\n', ["pyproject.toml", "not valid TOML", "line"]),
])
def test_bad_configuration_is_exit_2_naming_file_key_and_what_is_allowed(project: Path, body: str, words: list[str]) -> None:
    (project / "pyproject.toml").write_text(body)
    proc = check(project)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(project / "pyproject.toml") in proc.stderr or "pyproject.toml:" in proc.stderr
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)


def test_load_without_any_file_is_empty(tmp_path: Path) -> None:
    loaded = load(None, tmp_path)
    assert loaded.path is None and loaded.config.select is None and loaded.config.fail_on is None
    with pytest.raises(ConfigError):
        parse(tmp_path / "absent.toml")


def test_configured_settings_reach_the_collector_and_flags_still_win(tmp_path: Path) -> None:
    target = ROOT / "fixtures" / "healthy_mlp_classifier.py"
    cfg = tmp_path / "doctor.toml"
    cfg.write_text('budget = "quick"\nseed = 3\ndevice = "cpu"\ntimeout = 0.01\n')
    stopped = doctor("check", target, "--config", cfg, "--static", "--format", "json", "-q")
    assert stopped.returncode == 3 and "within 0.01 s" in json.loads(stopped.stdout)["errors"][-1]["message"]
    out = tmp_path / "out"
    ran = doctor("check", target, "--config", cfg, "--static", "--timeout", "300", "-q", "--output-dir", out)
    assert ran.returncode == 0, ran.stderr
    measured = Metrics.model_validate_json((out / "metrics.json").read_text())
    assert (measured.budget, measured.seed, measured.setup.device) == ("quick", 3, "cpu")
