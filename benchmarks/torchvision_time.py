"""Wall time and findings of `doctor check` (standard budget) on healthy torchvision classifiers at their usual input sizes.

Usage: python benchmarks/torchvision_time.py [--models resnet18,vit_b_16] [--batch 8] [--budget standard]
                                             [--limit 60] [--json OUT]

Each model is written as a target file (weights=None: nothing is downloaded) training from scratch on
learnable synthetic images (noisy gratings whose orientation is the class) at the model's usual input
size, with SGD (momentum 0.9) at 0.01 or AdamW at 1e-3 for the ViT, and a small batch. doctor runs on it
as a user would (a fresh process, torch import included), one model at a time so the timings are what a
user waits. Prints the wall time, the exit code, the findings (a healthy model must have no warning or
error) and what the report says was cut to fit the time. Exit 1 when a model exceeds the limit or is not clean.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = {  # name: (input size, optimizer line)
    "resnet18": (224, "torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)"),
    "resnet50": (224, "torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)"),
    "mobilenet_v3_small": (224, "torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)"),
    "shufflenet_v2_x1_0": (224, "torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)"),
    "efficientnet_b0": (224, "torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)"),
    "vit_b_16": (224, "torch.optim.AdamW(model.parameters(), lr=1e-3)"),
}

TEMPLATE = '''"""Healthy: torchvision {name} from scratch at {size}px, batch {batch}, on noisy oriented gratings (class = orientation).

expect: clean
"""
import torch
import torchvision

batch_size = {batch}
CLASSES = 10


def _images(n, seed):
    # Class k is a grating at orientation k * 18 degrees with a random phase and frequency, plus noise:
    # learnable through any pooling, unlike a fixed random template per class.
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    theta = y.float() * torch.pi / CLASSES
    freq = 0.15 + 0.1 * torch.rand(n, generator=g)
    phase = 2 * torch.pi * torch.rand(n, generator=g)
    r = torch.arange({size}, dtype=torch.float32)
    u = torch.cos(theta)[:, None, None] * r[None, :, None] + torch.sin(theta)[:, None, None] * r[None, None, :]
    wave = torch.sin(freq[:, None, None] * u + phase[:, None, None])
    x = wave[:, None] + 0.5 * torch.randn(n, 3, {size}, {size}, generator=g)
    return (x - x.mean()) / x.std(), y


train_data = _images({n_train}, 0)
val_data = _images({n_val}, 1)


def build_model():
    return torchvision.models.{name}(weights=None, num_classes=CLASSES)


def optimizer(model):
    return {opt}
'''


def run(name: str, size: int, opt: str, batch: int, budget: str, workdir: Path) -> dict:
    path = workdir / f"tv_{name}.py"
    path.write_text(TEMPLATE.format(name=name, size=size, batch=batch, opt=opt, n_train=32 * batch, n_val=8 * batch))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", str(path), "--budget", budget, "--format", "json"],
                          cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    row = {"model": name, "size": size, "batch": batch, "wall_s": round(wall, 1), "exit": proc.returncode,
           "findings": [], "cut": [], "alarms": []}
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        row["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return row
    row["findings"] = [f"{f['rule']}:{f['severity']}" for f in report.get("findings", [])]
    row["alarms"] = [f["rule"] for f in report.get("findings", []) if f["severity"] in ("warning", "error")]
    row["cut"] = [n for n in report.get("setup", {}).get("notes", []) if "time" in n.lower() or "cut" in n.lower()]
    row["errors"] = [e.get("message") for e in report.get("errors", [])]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget", default="standard", choices=("quick", "standard", "deep"))
    ap.add_argument("--limit", type=float, default=60.0, help="wall seconds a model may take")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="doctor-tv-") as tmp:
        for name in names:
            size, opt = MODELS[name]
            row = run(name, size, opt, args.batch, args.budget, Path(tmp))
            rows.append(row)
            verdict = "clean" if not row["alarms"] and "error" not in row and not row.get("errors") else "NOT CLEAN"
            print(f"{name:<20} {size}px batch {args.batch}: {row['wall_s']:6.1f} s  exit {row['exit']}  {verdict}  "
                  f"{' '.join(row['findings']) or '-'}", flush=True)
            for note in row["cut"]:
                print(f"    {note}")
            for err in row.get("errors") or row.get("error") or []:
                print(f"    error: {err}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    slow = [r["model"] for r in rows if r["wall_s"] > args.limit]
    dirty = [r["model"] for r in rows if r["alarms"] or "error" in r or r.get("errors")]
    print(f"\n{len(rows)} models, budget {args.budget}: max {max(r['wall_s'] for r in rows):.1f} s; "
          f"over {args.limit:g} s: {', '.join(slow) or 'none'}; not clean: {', '.join(dirty) or 'none'}")
    return 1 if slow or dirty else 0


if __name__ == "__main__":
    sys.exit(main())
