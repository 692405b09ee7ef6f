"""The pre-commit hooks, the GitHub Action and the README's snippets parse, and use only flags doctor has."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from doctor.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w$-])(--?[a-zA-Z][\w-]*)")


def check_parser() -> argparse.ArgumentParser:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return sub.choices["check"]


def check_flags() -> set[str]:
    return set(check_parser()._option_string_actions)  # noqa: SLF001


def test_the_flag_list_matches_check_help() -> None:
    help_text = subprocess.run([sys.executable, "-m", "doctor", "check", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60).stdout
    assert {f for f in FLAG.findall(help_text) if f.startswith("--")} <= check_flags()
    assert {"--static", "--format", "--output-dir", "--baseline", "--logdir", "--config"} <= check_flags()


@pytest.fixture(scope="module")
def hooks() -> list[dict]:
    data = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(data, list) and data
    return data


def test_pre_commit_hooks(hooks: list[dict]) -> None:
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"doctor-static", "doctor-probe"}
    for h in hooks:
        assert {"id", "name", "entry", "language"} <= set(h) and h["language"] == "python"
        words = shlex.split(h["entry"])
        assert words[:2] == ["doctor", "check"]
        assert set(FLAG.findall(h["entry"])) <= check_flags()
        # The target comes from the user's `args:`; with one the entry is a valid command line.
        check_parser().parse_args(words[2:] + ["model.py"])
        assert h.get("pass_filenames") is False  # doctor checks one target, not each changed file
    assert "--static" in by_id["doctor-static"]["entry"]
    assert "--static" not in by_id["doctor-probe"]["entry"] and by_id["doctor-probe"]["stages"] == ["pre-push"]


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def _doctor_lines(script: str) -> list[str]:
    """The words that reach doctor: after `doctor check`, and inside `args+=(...)` (not the shell tests around them)."""
    out = []
    for ln in script.splitlines():
        out += [f"args {m}" for m in re.findall(r"args\+=\(([^)]*)\)", ln)]
        out += [f"doctor check {m}" for m in re.findall(r"doctor check (.*)", ln)]
    return out


def test_action_is_composite_and_uses_only_real_flags(action: dict) -> None:
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scripts = [s["run"] for s in steps if "run" in s]
    lines = [ln for sc in scripts for ln in _doctor_lines(sc)]
    assert any("doctor check" in ln for ln in lines)
    used = {f for ln in lines for f in FLAG.findall(ln)}
    assert used and used <= check_flags(), used - check_flags()
    assert {"--format", "--output-dir", "--logdir", "--fail-on", "--baseline"} <= used
    # Every input the steps refer to is declared.
    text = (ROOT / "action.yml").read_text()
    referenced = set(re.findall(r"inputs\.([\w-]+)", text))
    assert referenced <= set(action["inputs"]), referenced - set(action["inputs"])


def test_action_writes_the_summary_and_uploads_sarif_and_the_html_report(action: dict) -> None:
    steps = action["runs"]["steps"]
    run_text = "\n".join(s.get("run", "") for s in steps)
    assert "--format github" in run_text and "$GITHUB_STEP_SUMMARY" in run_text and "report.md" in run_text
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"].endswith("/report.sarif")
    assert "report.html" in uses["actions/upload-artifact"]["with"]["path"]
    # The job fails exactly when doctor does: its exit code is passed on at the end.
    assert "steps.doctor.outputs.exit-code" in steps[-1]["run"]


def _readme_yaml_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```yaml\n(.*?)```", readme, re.S)


def test_readme_shows_both_with_real_names(hooks: list[dict], action: dict) -> None:
    blocks = _readme_yaml_blocks()
    pre_commit = [yaml.safe_load(b) for b in blocks if "doctor-static" in b]
    workflows = [yaml.safe_load(b) for b in blocks if "uses:" in b and "runs-on" in b]
    assert pre_commit and workflows
    hook_ids = {h["id"] for h in hooks}
    used_hooks = [h for cfg in pre_commit for repo in cfg["repos"] for h in repo["hooks"]]
    assert {h["id"] for h in used_hooks} <= hook_ids and len(used_hooks) == 2
    for h in used_hooks:  # the README's args complete the entry into a valid command line
        entry = next(x["entry"] for x in hooks if x["id"] == h["id"])
        check_parser().parse_args(shlex.split(entry)[2:] + list(h["args"]))
    action_steps = [s for wf in workflows for job in wf["jobs"].values() for s in job["steps"]
                    if "uses" in s and "doctor" in s["uses"] and "upload" not in s["uses"]]
    assert action_steps
    for s in action_steps:
        assert set(s.get("with", {})) <= set(action["inputs"])
        assert set(FLAG.findall(str(s.get("with", {}).get("args", "")))) <= check_flags()
    permissions = [wf.get("permissions", {}) for wf in workflows]
    assert any(p.get("security-events") == "write" for p in permissions)  # SARIF upload needs it
