"""doctor.watch in a plain PyTorch loop: the same rules as `doctor check`, on your own run.

    python examples/watch/plain_loop.py                 # a healthy run: no findings
    python examples/watch/plain_loop.py --lr 30         # a rate far too high: nan-loss and exploding-gradients,
                                                  # and halt_on stops the run at the first judgement after it

It writes TensorBoard scalars to runs/watch (readable by TensorBoard and by `doctor check --logdir runs/watch`)
and the usual report to doctor-watch-report/.
"""

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import doctor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()

    torch.manual_seed(0)
    centres = torch.randn(4, 16) * 2
    y = torch.randint(0, 4, (4096,))
    x = centres[y] + torch.randn(4096, 16)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    try:
        with doctor.watch(model, opt, every=100, logdir="runs/watch", halt_on=["nan-loss"]) as mon:
            for step in range(args.steps):
                i = (step * 64) % 4096
                opt.zero_grad()
                loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
                loss.backward()
                opt.step()
                mon.step(loss)
                if step % 200 == 199:
                    with torch.no_grad():
                        mon.val(F.cross_entropy(model(x[-512:]), y[-512:]))
    except doctor.DoctorHalt as stop:
        print(stop)
    paths = mon.report("doctor-watch-report")
    print(f"{len(mon.findings)} findings; report: {paths[0]}")


if __name__ == "__main__":
    main()
