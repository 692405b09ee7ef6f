"""Detection rate and false alarms of `doctor check` over the setups in benchmarks/corpus/.

Each corpus file is a complete target file modelled on a kind of public bug report; its docstring ends
with `expect: rule-a | rule-b` (any one of the listed rules counts as detected) or `expect: clean`. This
script runs the command line on each, exactly as a user would, and prints one row per file:

    python benchmarks/corpus.py [--budget standard] [--only PATTERN] [--jobs 1] [--json OUT]

Verdicts: a fault is *detected* when any expected rule is among the findings (consequences included)
at severity warning or above, or, for a crash rule (rules/crash/), at any severity; otherwise *missed*.
A healthy setup is *clean* unless a finding of severity warning or error appears (*false-alarm*); info
findings are not alarms. *error* means doctor gave no JSON report for the file.

It is a measurement, not a test: the exit status is 0 whatever the verdicts, unless the runner itself
breaks (bad arguments, no corpus). Standard library only; doctor runs under this interpreter
(`sys.executable -m doctor`), so run the script with the interpreter that has doctor installed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "benchmarks" / "corpus"
ALARM = {"warning", "error"}  # severities that count as a detection / a false alarm
# rules of the crash family: a finding at any severity counts (used when rules/crash/ cannot be listed)
CRASH_RULES_FALLBACK = {"backward-twice", "batchnorm-last-batch-of-one", "batchnorm-single-sample",
                        "device-mismatch", "inplace-modification", "input-dtype-mismatch",
                        "loss-shape-mismatch", "loss-without-grad", "target-dtype-mismatch"}


def crash_rules() -> set[str]:
    found = {p.stem for p in (ROOT / "rules" / "crash").glob("*.yaml")}
    return found or set(CRASH_RULES_FALLBACK)


def expected(path: Path) -> list[str] | None:
    """The rule ids the header's `expect:` line lists ([] for `expect: clean`, None if there is no line)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except SyntaxError:
        return None
    m = re.search(r"^expect:\s*(.+)$", doc, re.M)
    if not m:
        return None
    ids = [r.strip() for r in re.split(r"[|,]", m.group(1)) if r.strip()]
    return [] if ids == ["clean"] else ids


def run_one(path: Path, budget: str, timeout: float) -> dict:
    """Run doctor on one file and judge its JSON report against the header."""
    expect = expected(path)
    cmd = [sys.executable, "-m", "doctor", "check", str(path), "--format", "json", "--budget", budget]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    row = {"file": path.name, "expect": expect, "findings": [], "verdict": "error", "exit": None,
           "wall_s": 0.0, "status": None, "note": ""}
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        row.update(wall_s=round(time.monotonic() - t0, 1), note=f"runner timeout after {timeout:.0f} s")
        return row
    row.update(exit=proc.returncode, wall_s=round(time.monotonic() - t0, 1))
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        row["note"] = "no JSON report: " + " / ".join(tail)[:300]
        return row
    row["status"] = report.get("status")
    row["findings"] = [{"rule": f.get("rule"), "severity": f.get("severity"),
                        "consequence_of": f.get("consequence_of")} for f in report.get("findings", [])]
    row["errors"] = report.get("errors", [])
    if expect is None:
        row.update(verdict="no-expect", note="the header has no `expect:` line")
        return row
    crash = crash_rules()
    if expect:
        hit = [f["rule"] for f in row["findings"] if f["rule"] in expect
               and (f["severity"] in ALARM or f["rule"] in crash)]
        row["verdict"] = "detected" if hit else "missed"
    else:
        alarms = [f["rule"] for f in row["findings"] if f["severity"] in ALARM]
        row["verdict"] = "false-alarm" if alarms else "clean"
    return row


def shown_findings(row: dict) -> str:
    """Rule ids with severity initials; consequences in brackets."""
    parts = []
    for f in row["findings"]:
        text = f"{f['rule']}:{(f['severity'] or '?')[0]}"
        parts.append(f"({text})" if f["consequence_of"] else text)
    return " ".join(parts) or "-"


def print_table(rows: list[dict]) -> None:
    width = max([len(r["file"]) for r in rows] + [4])
    print(f"{'file':<{width}}  {'verdict':<11}  {'exit':>4}  {'wall_s':>6}  expect -> found")
    for r in rows:
        exp = "clean" if r["expect"] == [] else " | ".join(r["expect"] or ["?"])
        exit_code = "-" if r["exit"] is None else str(r["exit"])
        print(f"{r['file']:<{width}}  {r['verdict']:<11}  {exit_code:>4}  {r['wall_s']:>6.1f}  {exp} -> "
              f"{shown_findings(r)}" + (f"  [{r['note']}]" if r["note"] else ""))


def summary(rows: list[dict]) -> dict:
    faults = [r for r in rows if r["expect"]]
    healthy = [r for r in rows if r["expect"] == []]
    walls = [r["wall_s"] for r in rows]
    return {
        "faults": len(faults),
        "detected": sum(r["verdict"] == "detected" for r in faults),
        "missed": [r["file"] for r in faults if r["verdict"] == "missed"],
        "healthy": len(healthy),
        "false_alarms": [r["file"] for r in healthy if r["verdict"] == "false-alarm"],
        "errors": [r["file"] for r in rows if r["verdict"] in ("error", "no-expect")],
        "wall_total_s": round(sum(walls), 1),
        "wall_max_s": max(walls, default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="standard", choices=("quick", "standard", "deep"))
    p.add_argument("--only", metavar="PATTERN", help="only files whose name matches this glob or substring")
    p.add_argument("--jobs", type=int, default=1, help="files checked at once (default 1: timings stay comparable)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per file before the runner gives up")
    p.add_argument("--json", metavar="OUT", type=Path, help="also write the rows and the summary to OUT")
    args = p.parse_args(argv)

    files = sorted(CORPUS.glob("*.py"))
    if args.only:
        pat = args.only if any(c in args.only for c in "*?[") else f"*{args.only}*"
        files = [f for f in files if fnmatch.fnmatch(f.name, pat)]
    if not files:
        print(f"corpus.py: no corpus files in {CORPUS}" + (f" match {args.only!r}" if args.only else ""),
              file=sys.stderr)
        return 2

    t0 = time.monotonic()
    rows: list[dict] = []

    def job(path: Path) -> dict:
        row = run_one(path, args.budget, args.timeout)
        rows.append(row)
        print(f"[{len(rows)}/{len(files)}] {row['file']}: {row['verdict']} ({row['wall_s']:.1f} s)",
              file=sys.stderr, flush=True)
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(job, files))

    print_table(results)
    s = summary(results)
    s["elapsed_s"] = round(time.monotonic() - t0, 1)
    print()
    print(f"detection rate: {s['detected']}/{s['faults']}"
          + (f" ({s['detected'] / s['faults']:.0%})" if s["faults"] else "")
          + (f"; missed: {', '.join(s['missed'])}" if s["missed"] else ""))
    print(f"false alarms:   {len(s['false_alarms'])}/{s['healthy']}"
          + (f": {', '.join(s['false_alarms'])}" if s["false_alarms"] else ""))
    if s["errors"]:
        print(f"no verdict:     {', '.join(s['errors'])}")
    print(f"wall time:      {s['wall_total_s']:.1f} s total, {s['wall_max_s']:.1f} s max per file "
          f"({s['elapsed_s']:.1f} s elapsed, budget {args.budget}, jobs {args.jobs})")
    if args.json:
        args.json.write_text(json.dumps({"budget": args.budget, "summary": s, "rows": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
