"""Overhead of doctor.watch on a plain training loop: step time and peak memory against the same loop without it.

Short blocks of steps alternate, unmonitored and monitored (plain, watched, watched, plain, ...), on the same
model, optimizer and batches, so machine noise and drift hit both alike; the ratio is of the total times of
each kind, so the monitor's occasional work (sampled steps, reads of its buffers, judgements at most once a
second) counts in full whichever block it falls in. One monitor serves the whole run and is warmed up first:
what is timed is what an hours-long run pays per step, not the one-time start and the final report.
Peak memory is measured in two fresh processes, one per mode (ru_maxrss on the CPU, which
includes torch itself; torch.cuda.max_memory_allocated on a GPU).

    python benchmarks/watch_overhead.py                      # mlp and resnet18 on the CPU, every=1 and every=10
    python benchmarks/watch_overhead.py --device cuda --models resnet50,vit_b_16 --size 224
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(name: str, size: int, batch: int, device: str):
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(batch, 64, generator=g)
    else:
        import torchvision  # noqa: PLC0415

        model = getattr(torchvision.models, name)(num_classes=10)
        x = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return model, opt, x.to(device), y.to(device)


def steps(model, opt, x, y, n: int, mon=None) -> None:
    import torch.nn.functional as F  # noqa: PLC0415, N812

    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.step(loss)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch  # noqa: PLC0415

        torch.cuda.synchronize()


def time_ratio(name: str, every: int, args) -> tuple[float, float, float]:
    import doctor  # noqa: PLC0415

    model, opt, x, y = build(name, args.size, args.batch, args.device)
    steps(model, opt, x, y, 5)  # warm-up
    sync(args.device)
    t = time.perf_counter()
    steps(model, opt, x, y, 10)
    sync(args.device)
    block = args.block or max(20, math.ceil(args.block_s / ((time.perf_counter() - t) / 10)))
    plain, watched = [], []  # (wall seconds, process CPU seconds) per block
    # One monitor for the whole run, as in a real loop (its sampling period adapts over the first steps);
    # during the unmonitored blocks it is not called, and the hooks it may have armed for its next sampled
    # step are taken off (and put back after), so those blocks run the bare loop.
    mon = doctor.watch(model, opt, every=every, echo=False).start()
    # The monitor's warm-up (its imports, its first samples, the sampling period settling): 2000 steps, or
    # about 20 seconds of a slow model.
    steps(model, opt, x, y, max(block, min(2000, math.ceil(20 * block / args.block_s))), mon)

    def run_plain() -> None:
        armed = mon._stats.sampling  # noqa: SLF001
        mon._stats.disarm()  # noqa: SLF001
        sync(args.device)
        t, c = time.perf_counter(), time.process_time()
        steps(model, opt, x, y, block)
        sync(args.device)
        plain.append((time.perf_counter() - t, time.process_time() - c))
        if armed:
            mon._stats.arm()  # noqa: SLF001
        # The plain block's time is not the monitored run's: it neither times a step nor brings a judgement nearer.
        mon._t_last = None  # noqa: SLF001
        mon._next_judge += plain[-1][0]  # noqa: SLF001

    def run_watched() -> None:
        sync(args.device)
        t, c = time.perf_counter(), time.process_time()
        steps(model, opt, x, y, block, mon)
        sync(args.device)
        watched.append((time.perf_counter() - t, time.process_time() - c))

    # Short blocks in the order plain, watched, watched, plain, ...: a drift of the machine's speed hits both
    # alike. What is compared is the total time of each kind, so the monitor's occasional work (a read of
    # its buffers, a judgement at most once a second) counts in full whichever block it falls in.
    for i in range(args.repeats):
        for fn in ((run_plain, run_watched) if i % 2 == 0 else (run_watched, run_plain)):
            fn()
    mon.close()
    assert not mon.disabled, mon.error
    def ratio(a: int, b: int, clock: int) -> float:
        return sum(w[clock] for w in watched[a:b]) / sum(p[clock] for p in plain[a:b])

    half, n = len(plain) // 2, block * args.repeats
    # The CPU time of the process is blind to the machine's other load (time this process was not running),
    # so on a shared CPU it is the steadier of the two; on a GPU only the wall clock sees the device's work.
    cpu = "" if args.device.startswith("cuda") else f", CPU time {ratio(0, len(plain), 1):.3f}x"
    print(f"{'':>12}  ({args.repeats} x 2 blocks of {block} steps; sampling one step in {mon.sample_every}; "
          f"{len(mon.findings)} findings; wall time by halves {ratio(0, half, 0):.3f}x, {ratio(half, len(plain), 0):.3f}x"
          f"{cpu})")
    return ratio(0, len(plain), 0), sum(p[0] for p in plain) / n, sum(w[0] for w in watched) / n


def peak(name: str, mode: str, args) -> float:
    """Peak memory of one fresh process running the loop (MiB)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['x']\n"
            "import benchmarks.watch_overhead as b, resource, json, torch, doctor\n"
            f"model, opt, x, y = b.build({name!r}, {args.size}, {args.batch}, {args.device!r})\n"
            f"mon = doctor.watch(model, opt, every=1, echo=False).start() if {mode == 'watch'} else None\n"
            f"b.steps(model, opt, x, y, {args.block or 300}, mon)\n"
            "mon and mon.close()\n"
            f"cuda = {args.device.startswith('cuda')}\n"
            "print(json.dumps(torch.cuda.max_memory_allocated() / 2**20 if cuda else "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,resnet18")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--block", type=int, default=0, help="steps per timed block (default: about --block-s seconds)")
    ap.add_argument("--block-s", type=float, default=0.25, help="seconds per timed block when --block is not given")
    ap.add_argument("--repeats", type=int, default=80, help="blocks of each kind, interleaved")
    ap.add_argument("--every", default="1,10")
    args = ap.parse_args()
    import torch  # noqa: PLC0415

    torch.manual_seed(0)
    print(f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
          + f", batch {args.batch}, {args.repeats} blocks of each kind")
    for name in args.models.split(","):
        for every in (int(e) for e in args.every.split(",")):
            ratio, p, w = time_ratio(name, every, args)
            print(f"{name:>12}  every={every:<3}  step {p * 1e3:8.2f} ms plain, {w * 1e3:8.2f} ms watched: {ratio:.3f}x")
        base, mon = peak(name, "plain", args), peak(name, "watch", args)
        print(f"{name:>12}  peak memory {base:.0f} MiB plain, {mon:.0f} MiB watched (every=1): {mon / base:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
