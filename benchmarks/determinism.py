"""Determinism over every fixture: three runs with seed 0 give the same findings, seeds 1 and 2 keep the headline.

The test suite checks this on three representative fixtures through the command line
(tests/test_determinism.py); running all ~80 fixtures five times that way would take most of an hour
on a 2-core machine. This script runs the collector in-process instead (torch imported once per
worker process), judges with the built-in rules, and prints one line per fixture:

    python benchmarks/determinism.py [--jobs 2] [--budget standard] [FIXTURE ...]

Same findings means the same (rule, severity, location) set, and the same messages with their
numbers, except for rules that report wall-clock timings (listed in TIMED), whose numbers vary.
Exit status 1 if any fixture is not deterministic or loses its headline under another seed.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing as mp
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ((0, 0), (0, 1), (0, 2), (1, 0), (2, 0))  # (seed, repetition)
TIMED = {"dataloader-bottleneck"}  # messages quote measured seconds: compare the rule, not the numbers


def header(path: Path) -> list[str]:
    """The rules a fixture's `expect:` line names, headline first ([] for a healthy fixture)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    m = re.search(r"^expect:\s*(.+)$", doc, re.M)
    return [r.strip() for r in m.group(1).split(",") if r.strip() != "clean"] if m else []


def run_once(path: Path, seed: int, budget: str) -> list[tuple]:
    """Collect in this process, judge with the built-in rules; the findings a CI gate would compare."""
    from doctor.collect import worker
    from doctor.collect.spec import METRICS_FILE, SPEC_FILE, CollectSpec
    from doctor.engine.evaluate import judge
    from doctor.engine.loader import load_rules
    from doctor.metrics import Metrics

    with tempfile.TemporaryDirectory(prefix="doctor-det-") as tmp:
        work = Path(tmp)
        spec = CollectSpec(target=str(path), budget=budget, device="cpu", seed=seed)
        (work / SPEC_FILE).write_text(spec.model_dump_json())
        worker.main(work)
        metrics = Metrics.model_validate_json((work / METRICS_FILE).read_text())
    findings = judge(load_rules(), metrics).findings
    return sorted((f.rule, f.severity.value, json.dumps(f.location.model_dump() if f.location else None,
                                                       sort_keys=True),
                   "" if f.rule in TIMED else f.message) for f in findings)


def check_fixture(args: tuple[str, str]) -> dict:
    path, budget = Path(args[0]), args[1]
    t0 = time.perf_counter()
    results = {key: run_once(path, key[0], budget) for key in RUNS}
    expected = header(path)
    headline = set(expected[:1])  # the symptom the fixture is about; the rest are its consequences
    problems, notes = [], []
    first = results[(0, 0)]
    for rep in (1, 2):
        if results[(0, rep)] != first:
            diff = set(results[(0, rep)]) ^ set(first)
            problems.append(f"seed 0 run {rep + 1} differs: " + "; ".join(f"{d[0]}: {d[3][:90]}" for d in sorted(diff)))
    for seed in (0, 1, 2):
        gating = {f[0] for f in results[(seed, 0)] if f[1] in ("error", "warning")}
        if headline and not headline <= gating:
            problems.append(f"seed {seed} lost its headline {sorted(headline - gating)}")
        elif not set(expected) <= gating:
            notes.append(f"seed {seed}: headline kept, consequence(s) {sorted(set(expected) - gating)} not reported")
        if not headline and gating:
            problems.append(f"seed {seed} not clean: {sorted(gating)}")
    return {"fixture": path.name, "ok": not problems, "problems": problems, "notes": notes,
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixtures", nargs="*", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--budget", default="standard")
    a = ap.parse_args()
    paths = a.fixtures or sorted(p for p in (ROOT / "fixtures").glob("*.py") if not p.name.startswith("_"))
    paths += [] if a.fixtures else sorted((ROOT / "examples").glob("*.py"))
    t0 = time.perf_counter()
    # One thread per process: the processes already fill the cores.
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs, initializer=_one_thread, maxtasksperchild=8) as pool:
        rows = pool.map(check_fixture, [(str(p.resolve()), a.budget) for p in paths], chunksize=1)
    bad = [r for r in rows if not r["ok"]]
    for r in rows:
        print(f"{'ok  ' if r['ok'] else 'FAIL'}  {r['fixture']:<50} {r['seconds']:>6.1f} s"
              + "".join(f"\n      {p}" for p in r["problems"]) + "".join(f"\n      note: {n}" for n in r["notes"]))
    print(f"\n{len(rows) - len(bad)}/{len(rows)} fixtures deterministic over {len(RUNS)} runs each "
          f"(seed 0 three times, seeds 1 and 2), budget {a.budget}, {time.perf_counter() - t0:.0f} s wall")
    return 1 if bad else 0


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


if __name__ == "__main__":
    sys.exit(main())
