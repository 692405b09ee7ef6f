"""`doctor check TARGET --nproc 2`: the target trained under DistributedDataParallel on 2 gloo processes.

Each target under fixtures/nproc/ says in its docstring what doctor must report with --nproc 2 (`expect:`,
`info:`, `exit:`, as every fixture does); the distributed rules are judged there beside the usual ones.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.engine.loader import load_rules

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "fixtures" / "nproc"
TARGETS = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))


def header(path: Path) -> tuple[set[str], set[str], int | None]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    exp = {r.strip() for r in re.search(r"^expect:\s*(.+)$", doc, re.M).group(1).split(",")} - {"clean"}
    info = re.search(r"^info:\s*(.+)$", doc, re.M)
    code = re.search(r"^exit:\s*(\d+)", doc, re.M)
    return exp, {r.strip() for r in info.group(1).split(",")} if info else set(), int(code.group(1)) if code else None


def check(path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", str(path), "--format", "json", "-q",
                           "--budget", "quick", *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.stdout, proc.stderr[-3000:]
    return proc, json.loads(proc.stdout)


@pytest.mark.parametrize("path", TARGETS, ids=lambda p: p.stem)
def test_nproc_target_reports_what_its_header_says(path: Path) -> None:
    want, infos, code = header(path)
    proc, report = check(path, "--nproc", "2")
    gating = {f["rule"] for f in report["findings"] if f["severity"] in ("error", "warning")}
    info = {f["rule"] for f in report["findings"] if f["severity"] == "info"}
    said = "; ".join(f"{f['rule']}: {f['message']}" for f in report["findings"])
    assert want <= gating if want else not gating, f"expected {sorted(want) or 'clean'}, got {said}"
    assert infos <= info, f"expected info {sorted(infos)}, got {said}"
    if not infos:  # a healthy or fault target without the info: the rate was scaled or the batch kept
        assert "lr-not-scaled-for-global-batch" not in info, said
    probe = next(p for p in report["probes"] if p["name"] == "distributed")
    if code is None:
        assert probe["status"] == "ran", probe
        assert not report["errors"], report["errors"]
        assert proc.returncode == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)
        assert any(n.startswith("--nproc 2: trained under DistributedDataParallel") for n in report["setup"]["notes"])
    else:
        assert proc.returncode == code, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


def test_a_parameter_unused_in_forward_is_a_crash_with_its_fix() -> None:
    proc, report = check(HERE / "crash_unused_parameter.py", "--nproc", "2")
    assert proc.returncode == 3
    (err,) = [e for e in report["errors"] if e["probe"] == "distributed"]
    assert "finished reduction in the prior iteration" in err["message"]
    assert "find_unused_parameters=True" in err["hint"]
    assert "find_unused_parameters=True" in proc.stderr and "Traceback" not in proc.stderr
    # What the single-process probes measured before is all there.
    assert {p["name"] for p in report["probes"] if p["status"] == "ran"} >= {"init_loss", "gradient_flow"}


def test_without_nproc_the_burst_is_skipped_and_says_how_to_run_it() -> None:
    proc, report = check(HERE / "same_samples.py")
    probe = next(p for p in report["probes"] if p["name"] == "distributed")
    assert probe["status"] == "skipped" and "--nproc" in probe["reason"]
    assert not any(f["rule"].startswith(("ranks-", "lr-not-scaled")) for f in report["findings"])


def test_nproc_out_of_range_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", str(HERE / "healthy_dataset.py"), "--nproc", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--nproc" in proc.stderr and "Traceback" not in proc.stderr


def test_every_distributed_rule_fires_on_an_nproc_target_and_two_stay_clean() -> None:
    rules = {r.id for r in load_rules() if r.source.parent.name == "distributed"}
    fired = set().union(*(header(p)[0] | header(p)[1] for p in TARGETS))
    assert rules <= fired, sorted(rules - fired)
    assert sum(1 for p in TARGETS if not header(p)[0] and not header(p)[1]) >= 2
