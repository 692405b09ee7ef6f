"""doctor.watch under torch.distributed: each distributed rule on a 2-process gloo run (CPU), fault and healthy.

The scripts under fixtures/distributed/ are ordinary DDP (or hand-averaged) training loops launched by torchrun;
their docstrings say what doctor must report, as every fixture's does.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.collect.probes.distributed import free_port
from doctor.engine.loader import load_rules

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "distributed"
SCRIPTS = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))


def expected(path: Path) -> set[str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return {r.strip() for r in re.search(r"^expect:\s*(.+)$", doc, re.M).group(1).split(",")} - {"clean"}


def run(path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(path), str(out)],
                          capture_output=True, text=True, timeout=240, cwd=HERE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_distributed_script_reports_what_its_header_says(path: Path, tmp_path: Path) -> None:
    got = run(path, tmp_path / "out.json")
    assert got["error"] is None and got["scalars"]["dist.world_size"] == 2
    fired = set(got["findings"])
    want = expected(path)
    assert want <= fired if want else not fired, f"{path.name}: expected {sorted(want) or 'clean'}, got {sorted(fired)}"
    if path.stem == "unsynced_biases":  # both biases drift, the one whose sum cannot move included
        assert got["scalars"]["dist.params_differ"] == 2 and got["scalars"]["dist.first_param_differ"] == "0.bias"


def test_every_distributed_rule_has_a_fault_and_the_healthy_runs_exist() -> None:
    # The live ones: lr-not-scaled-for-global-batch needs the one-process run beside, so only
    # `doctor check --nproc` judges it (tests/test_nproc.py).
    rules = {r.id for r in load_rules() if r.source.parent.name == "distributed" and r.spec.live}
    fired = set().union(*(expected(p) for p in SCRIPTS))
    assert rules and rules <= fired, sorted(rules - fired)
    assert sum(1 for p in SCRIPTS if not expected(p)) >= 2
