"""One rank of `doctor check --nproc N`: the target trained under DistributedDataParallel, watched by doctor.watch.

Run as `python -m doctor.collect.ddp_rank WORKDIR` with the torch.distributed environment set (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT); the job is WORKDIR/ddp.json, and each rank writes WORKDIR/rank<R>.json
with what it measured or the error that stopped it.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

EPOCHS = 3  # enough to see an epoch repeat the one before it
STEPS_PER_EPOCH = 16  # at most: the order of the first batches tells whether an epoch repeats
JOB_FILE = "ddp.json"


class DdpJob(BaseModel):
    """What the collector asks every rank to do."""

    target: str
    factory: Optional[str] = None
    seed: int = 0
    steps_per_epoch: int = STEPS_PER_EPOCH  # at most; fewer when the loader is shorter
    timeout_s: float = 60.0  # for each collective: a rank that never arrives stops the others by then


def calls_set_epoch(path: str) -> bool:
    """Does the target's source call `.set_epoch(...)` anywhere (its own training loop, say)?"""
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "set_epoch"
               for n in ast.walk(tree))


def _train(job: DdpJob, rank: int, world: int) -> dict[str, Any]:
    import torch  # noqa: PLC0415
    from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415
    from torch.utils.data import DataLoader, DistributedSampler  # noqa: PLC0415

    import doctor  # noqa: PLC0415
    from doctor.collect import data as datamod  # noqa: PLC0415
    from doctor.collect.budget import BUDGETS  # noqa: PLC0415
    from doctor.collect.context import prepare  # noqa: PLC0415
    from doctor.collect.inject import call_injected  # noqa: PLC0415
    from doctor.collect.target import load_target  # noqa: PLC0415
    from doctor.metrics import Metrics  # noqa: PLC0415

    device = torch.device("cpu")
    setup = load_target(job.target, job.factory, device="cpu", seed=job.seed)
    if setup.train_data is None:
        return {"skip": "the target has no training data: there are no samples to split across ranks"}
    name = setup.names.get("train_data", "train_data")
    inject = {"batch_size": setup.batch_size, "device": device, "seed": job.seed}
    value = datamod.resolve(setup.train_data, name=name, inject=inject)
    notes = []
    if isinstance(value, DataLoader):  # the target's own loader, sampler and all: that is what is checked
        loader = value
        sampler = loader.sampler if isinstance(loader.sampler, DistributedSampler) else None
        set_epoch = sampler is not None and calls_set_epoch(job.target)
        notes.append(f"the target's DataLoader ({'DistributedSampler' if sampler else type(loader.sampler).__name__}"
                     f"{', set_epoch called each epoch' if set_epoch else ''})")
    else:  # doctor builds the loader, as a DDP script should: the single-process batch split over the ranks
        dataset = datamod.to_loader(value, name=name, batch_size=setup.batch_size, seed=job.seed, shuffle=True,
                                    inject=inject).dataset
        sampler = DistributedSampler(dataset, shuffle=True, seed=job.seed)
        loader = DataLoader(dataset, batch_size=max(1, setup.batch_size // world), sampler=sampler)
        set_epoch = True
        notes.append(f"a DistributedSampler built by doctor, {max(1, setup.batch_size // world)} samples per rank "
                     f"(the single-process batch of {setup.batch_size} split over {world} ranks)")
    setup.train_data = loader
    ctx = prepare(setup, Metrics(), BUDGETS["quick"], device, job.seed)
    if ctx.broken is not None:
        raise ctx.broken.cause
    model = ctx.setup.model
    ddp = model if isinstance(model, DistributedDataParallel) else DistributedDataParallel(model)
    opt = ctx.make_optimizer(ddp)
    user_step = setup.train_step
    builtin = ctx.step_fn()
    try:
        length = len(loader)
    except TypeError:
        length = job.steps_per_epoch
    steps = torch.tensor([min(length, job.steps_per_epoch)])
    torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MIN)  # every rank must take as many steps
    per_epoch = int(steps)
    # every=64 (the distributed read period): the monitor buffers that many steps, read at the end by close().
    mon = doctor.watch(ddp, opt, every=64, rules=[], min_interval_s=0, echo=False, sample_every=4)
    with mon:
        for epoch in range(EPOCHS):
            if set_epoch:
                sampler.set_epoch(epoch)
            batches = datamod.read_batches(loader, name=name)
            for i, (_raw, x, y) in enumerate(batches):
                if i >= per_epoch:
                    break
                batch = (x.to(device), y.to(device))
                if user_step is not None:
                    loss = call_injected(user_step, {"model": ddp, "batch": batch, "optimizer": opt,
                                                     "loss_fn": ctx.loss_fn, "device": device}, what="train_step")
                else:
                    loss = builtin(ddp, batch, opt)
                mon.step(loss, batch=batch)
            batches.close()
    if mon.error:
        raise RuntimeError(f"doctor.watch failed on rank {rank}: {mon.error}")
    scalars = {k: v for k, v in mon.metrics().scalars.items() if k.startswith("dist.")}
    return {"scalars": scalars, "steps": mon.steps, "per_epoch": per_epoch, "epochs": EPOCHS, "notes": notes,
            "set_epoch": set_epoch}


def main(workdir: Path) -> int:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    job = DdpJob.model_validate_json((workdir / JOB_FILE).read_text())
    result: dict[str, Any] = {"rank": rank}
    code = 0
    try:
        import torch  # noqa: PLC0415
        import torch.distributed as dist  # noqa: PLC0415

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group("gloo", timeout=timedelta(seconds=job.timeout_s))
        result.update(_train(job, rank, world))
    except BaseException as exc:  # noqa: BLE001 - the user's code may raise anything: it is the report
        from doctor.collect.errors import error_record  # noqa: PLC0415
        from doctor.collect.target import TargetError  # noqa: PLC0415

        cause = exc.cause if isinstance(exc, TargetError) and exc.cause is not None else exc
        what = str(exc) if isinstance(exc, TargetError) else f"training under DistributedDataParallel (rank {rank})"
        rec = error_record(cause, kind="probe", target_file=job.target, what=what,
                           hint=exc.hint if isinstance(exc, TargetError) else "", probe="distributed")
        result["error"] = rec.model_dump(mode="json")
        code = 1
    (workdir / f"rank{rank}.json").write_text(json.dumps(result))
    try:
        import torch.distributed as dist  # noqa: PLC0415

        if dist.is_initialized() and code == 0:
            dist.barrier()
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001, S110 - leaving: what was measured is written
        pass
    return code


if __name__ == "__main__":
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: gloo's threads can abort a normal interpreter teardown after everything is written.
    os._exit(main(Path(sys.argv[1])))
