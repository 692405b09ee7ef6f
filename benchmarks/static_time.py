"""Wall time of `doctor check --static` on every fixture, against the floor of importing torch.

Usage: python benchmarks/static_time.py [--repeats N] [--limit SECONDS]

Each fixture runs as a user would run it (a fresh `doctor` process, torch import included), one at a
time, so the numbers are what a pre-commit hook waits. Prints the slowest fixtures, min / median / max,
and how many exceed the limit (5 s: the static analyzer's promise). Exit 1 if any does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="runs per fixture; the median is kept")
    ap.add_argument("--limit", type=float, default=5.0)
    args = ap.parse_args()

    floor = statistics.median(wall([sys.executable, "-c", "import torch"]) for _ in range(3))
    floor_tv = statistics.median(wall([sys.executable, "-c", "import torch, torchvision"]) for _ in range(3))
    times = {}
    for path in sorted((REPO / "fixtures").glob("*.py")):
        if path.name.startswith("_"):
            continue
        times[path.stem] = statistics.median(
            wall([sys.executable, "-m", "doctor", "check", "--static", str(path), "-q", "--format", "json"])
            for _ in range(args.repeats))
    values = sorted(times.values())
    print(f"python -c 'import torch': {floor:.2f} s; 'import torch, torchvision': {floor_tv:.2f} s (medians of 3)")
    for name, t in sorted(times.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {t:5.2f} s  {name}")
    over = [n for n, t in times.items() if t > args.limit]
    print(f"{len(times)} fixtures: min {values[0]:.2f} s, median {statistics.median(values):.2f} s, "
          f"max {values[-1]:.2f} s; over {args.limit:g} s: {len(over)} {sorted(over) if over else ''}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
