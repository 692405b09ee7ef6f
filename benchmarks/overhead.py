"""Overhead of doctor's instrumentation: an instrumented training step against a plain one, in one run.

Usage: python benchmarks/overhead.py [--device cpu|cuda] [--models mlp,resnet18,resnet50] [--repeats N]

Plain and instrumented blocks of steps alternate on the same model and batch, so drift (thermal,
other processes) hits both alike; the result is the ratio of the median block times. The
instrumented step is what doctor's training burst runs: per-layer gradient norms into a device
buffer, dead/saturated-unit counters in forward hooks, the loss kept on the device, and the
one host sync every `checkpoint_every` steps that the burst makes to check for NaN.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from torch import nn

from doctor.collect.instrument import ActStats, GradStats, forward_order


def _models(device: torch.device) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(0)
    cases = {
        "mlp": lambda: (nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                      nn.Linear(512, 10)), torch.randn(256, 256, generator=g), 256),
        "resnet18": lambda: (torchvision.models.resnet18(num_classes=10),
                             torch.randn(32 if device.type == "cpu" else 256, 3, 32, 32, generator=g), None),
        "resnet50": lambda: (torchvision.models.resnet50(num_classes=1000),
                             torch.randn(64, 3, 224, 224, generator=g), None),
        "vit_b_16": lambda: (torchvision.models.vit_b_16(num_classes=10),
                             torch.randn(8 if device.type == "cpu" else 64, 3, 224, 224, generator=g), None),
        "mobilenet_v3": lambda: (torchvision.models.mobilenet_v3_small(num_classes=10),
                                 torch.randn(8 if device.type == "cpu" else 128, 3, 224, 224, generator=g), None),
    }
    return cases


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(name: str, model: nn.Module, x: torch.Tensor, device: torch.device, steps: int, repeats: int,
          checkpoint_every: int = 20) -> dict[str, float]:
    model = model.to(device).train()
    x = x.to(device)
    classes = 1000 if name == "resnet50" else 10
    y = torch.randint(0, classes, (x.shape[0],), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    order = forward_order(model, lambda: model(x))
    total_steps = steps * repeats
    grads = GradStats(model, order, total_steps, device)
    acts = ActStats(model).attach()
    loss_buf = torch.zeros(total_steps, device=device)
    counter = {"i": 0}

    def plain_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def instrumented_step() -> None:
        i = counter["i"]
        acts.active = True
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        grads.record(i)
        opt.step()
        loss_buf[i] = loss.detach()
        acts.active = False
        if (i + 1) % checkpoint_every == 0:
            bool(torch.isfinite(loss_buf[: i + 1]).all())  # the burst's periodic host sync
        counter["i"] = i + 1

    try:
        for _ in range(3):  # warm-up: allocator, cuDNN autotuning, lazy hook slots
            plain_step()
        counter["i"] = 0
        instrumented_step()
        counter["i"] = 0
        _sync(device)
        plain_t, instr_t = [], []
        for _ in range(repeats):
            for fn, out in ((plain_step, plain_t), (instrumented_step, instr_t)):
                _sync(device)
                t = time.perf_counter()
                for _ in range(steps):
                    fn()
                _sync(device)
                out.append((time.perf_counter() - t) / steps)
    finally:
        acts.detach()
    p, q = statistics.median(plain_t), statistics.median(instr_t)
    return {"plain_ms": p * 1e3, "instrumented_ms": q * 1e3, "ratio": q / p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", default="mlp,resnet18")
    ap.add_argument("--steps", type=int, default=5, help="steps per timed block")
    ap.add_argument("--repeats", type=int, default=7, help="alternating plain/instrumented block pairs")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    cases = _models(device)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'model':10} {'batch':>6} {'plain ms':>10} {'instr ms':>10} {'ratio':>7}")
    for name in args.models.split(","):
        model, x, _ = cases[name]()
        r = bench(name, model, x, device, args.steps, args.repeats)
        print(f"{name:10} {x.shape[0]:>6} {r['plain_ms']:>10.2f} {r['instrumented_ms']:>10.2f} {r['ratio']:>7.3f}")


if __name__ == "__main__":
    main()
