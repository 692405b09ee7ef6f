"""Every fixture through the real CLI: the rules its header expects fire; healthy fixtures stay clean.

A fixture's docstring holds `expect: rule-a, rule-b` (or `expect: clean`) and optionally
`exit: N` and `flags: --deploy` (extra `doctor check` options its rules need). A fault fixture must report at least the rules it names (a fault may also show
its consequences, e.g. NaN data also makes a NaN loss); a healthy fixture must report nothing
at warning or above. The healthy real architectures are fixtures too, so false alarms fail here.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted(p for p in (ROOT / "fixtures").glob("*.py") if not p.name.startswith("_"))
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def header(path: Path) -> tuple[set[str], int | None]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    m = re.search(r"^expect:\s*(.+)$", doc, re.M)
    assert m, f"{path.name}: its docstring must say what doctor must report (`expect: ...`)"
    expected = {r.strip() for r in m.group(1).split(",")} - {"clean"}
    e = re.search(r"^exit:\s*(\d+)", doc, re.M)
    return expected, int(e.group(1)) if e else None


def info_rules(path: Path) -> set[str]:
    """Info-level rules a fixture must show, from an `info: rule-a, rule-b` header line."""
    m = re.search(r"^info:\s*(.+)$", ast.get_docstring(ast.parse(path.read_text())) or "", re.M)
    return {r.strip() for r in m.group(1).split(",")} if m else set()


def flags(path: Path) -> list[str]:
    """Extra `doctor check` options from a `flags: --deploy` header line (the probe family its rules need)."""
    m = re.search(r"^flags:\s*(.+)$", ast.get_docstring(ast.parse(path.read_text())) or "", re.M)
    return m.group(1).split() if m else []


def check(path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", str(path), "--format", "json", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.stdout, f"no JSON on stdout; stderr: {proc.stderr[-2000:]}"
    return proc, json.loads(proc.stdout)


def gating(report: dict) -> set[str]:
    return {f["rule"] for f in report["findings"] if f["severity"] in ("error", "warning")}


@pytest.mark.parametrize("path", FIXTURES + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_reports_what_its_header_says(path: Path) -> None:
    expected, exit_code = header(path)
    proc, report = check(path, *flags(path))
    fired = gating(report)
    infos = {f["rule"] for f in report["findings"] if f["severity"] == "info"}
    assert info_rules(path) <= infos, f"{path.name}: expected info findings {sorted(info_rules(path))}, got {infos}"
    assert expected <= fired if expected else not fired, (
        f"{path.name}: expected {sorted(expected) or 'clean'}, got "
        + "; ".join(f"{f['rule']}: {f['message']}" for f in report["findings"]))
    if exit_code is None:
        has_error = any(f["severity"] == "error" for f in report["findings"])
        exit_code = 1 if has_error else 0
        assert not report["errors"], report["errors"]
    assert proc.returncode == exit_code, proc.stderr[-2000:]
    if not expected and exit_code != 3:  # a target that cannot run is not clean, just without findings
        assert report["status"] == "clean"
        ran = {p["name"] for p in report["probes"] if p["status"] == "ran"}
        # A clean bill of health only counts if the probes actually measured something.
        assert {"data_stats", "init_loss", "gradient_flow", "train_val"} <= ran, report["probes"]


def test_every_rule_has_a_firing_and_a_healthy_fixture() -> None:
    from doctor.engine.loader import load_rules

    fired: set[str] = set()
    healthy = 0
    for path in FIXTURES:
        expected, _ = header(path)
        fired |= expected | info_rules(path)
        healthy += not expected
    # rules/run/ judges TensorBoard logs of a finished run, not a target file: tests/test_tensorboard.py
    # holds their firing and healthy logs.
    # rules/distributed/ is judged by doctor.watch in a torch.distributed run: tests/test_distributed.py runs
    # the fault and healthy scripts under fixtures/distributed/ on 2 gloo processes.
    rules = {r.id for r in load_rules() if r.source.parent.name not in ("run", "distributed")}
    assert rules <= fired, f"rules with no fixture that makes them fire: {sorted(rules - fired)}"
    assert healthy >= 4
