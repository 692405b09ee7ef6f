"""--nproc N: the target trained under DistributedDataParallel on N local CPU processes (gloo), for the
distributed rules: ranks that see the same samples, epochs that repeat, parameters that drift apart,
BatchNorm over a small per-rank batch, a learning rate left at the single-process value for a larger batch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from doctor.collect.ddp_rank import EPOCHS, JOB_FILE, STEPS_PER_EPOCH, DdpJob
from doctor.collect.probes import Probe, SkipProbe
from doctor.collect.target import TargetError

START_S = 60.0  # importing torch and the target, and joining the group, in each process
STEP_BUDGET_S = 60.0  # the epochs themselves, beyond the single-process step time times the steps
GRACE_S = 5.0  # after one rank fails, how long the others get to notice before they are stopped

UNUSED_HINT = ("A parameter took no part in the loss, so DistributedDataParallel's gradient reduction for the step "
               "never finished and the next step raised: pass find_unused_parameters=True to "
               "DistributedDataParallel, or leave the parameter out of the model (or give it requires_grad=False).")
PEER_GONE = ("Connection reset by peer", "Connection closed by peer")  # what the survivors say when a rank dies


def free_port() -> int:
    """A TCP port free on this machine now, for the group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In each rank (Linux): killed when the collector is, so a timed-out check leaves no orphan behind."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110 - elsewhere the timeout below still stops them
        pass


def _launch(ctx, n: int, workdir: Path, timeout_s: float) -> list[dict]:
    port = free_port()
    procs, logs = [], []
    for rank in range(n):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(n),
               "LOCAL_WORLD_SIZE": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        log = open(workdir / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed below, after the process
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "doctor.collect.ddp_rank", str(workdir)], env=env,
                                      stdout=log, stderr=subprocess.STDOUT, cwd=os.path.dirname(ctx.options["target"]),
                                      preexec_fn=_die_with_parent if sys.platform == "linux" else None))
    deadline = time.monotonic() + timeout_s
    failed_at = None
    try:
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            if failed_at is None and any(p.returncode not in (None, 0) for p in procs):
                failed_at = now
            if now > deadline or (failed_at is not None and now - failed_at > GRACE_S):
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    results = []
    for rank in range(n):
        path = workdir / f"rank{rank}.json"
        results.append(json.loads(path.read_text()) if path.is_file() else
                       {"rank": rank, "lost": (workdir / f"rank{rank}.log").read_text(errors="replace")[-2000:],
                        "timed_out": time.monotonic() > deadline, "returncode": procs[rank].returncode})
    return results


def _single_process(ctx) -> tuple[float | None, int]:
    """The learning rate and batch rows of the target in one process, as the other probes ran it."""
    from doctor.collect.deploy import batch_rows  # noqa: PLC0415 - torch, only once the probe runs

    lr = None
    if ctx.setup.make_optimizer is not None:
        opt = ctx.setup.make_optimizer(ctx.fresh_model())
        lr = opt.param_groups[0].get("lr") if opt.param_groups else None
    else:
        lr = 1e-3  # doctor's default Adam, the same in every rank
    try:
        rows = batch_rows(ctx.train_batches[0][0])
    except (StopIteration, IndexError):  # no tensor in the input, or a 0-d one first
        rows = ctx.setup.batch_size
    return lr, rows


def run(ctx) -> None:
    n = int(ctx.options.get("nproc", 1))
    if n < 2:
        raise SkipProbe("run with --nproc 2 (or more) to train the target under DistributedDataParallel")
    if ctx.synthetic:
        raise SkipProbe("the target has no training data: there are no samples to split across ranks")
    import torch.distributed as dist  # noqa: PLC0415

    if not dist.is_available() or not dist.is_gloo_available():
        raise SkipProbe("this PyTorch build has no torch.distributed gloo backend")
    workdir = Path(tempfile.mkdtemp(prefix="doctor-ddp-"))
    try:
        steps = EPOCHS * STEPS_PER_EPOCH
        timeout = START_S + STEP_BUDGET_S + steps * max(ctx.step_s, 0.001) * 4
        job = DdpJob(target=ctx.options["target"], factory=ctx.options.get("factory"), seed=ctx.seed,
                     timeout_s=min(timeout, 300.0))
        (workdir / JOB_FILE).write_text(job.model_dump_json())
        results = _launch(ctx, n, workdir, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lost = [r for r in results if "lost" in r]
    errors = [r for r in results if "error" in r]
    if lost and all(any(s in r["error"]["message"] for s in PEER_GONE) for r in errors):
        errors = []  # the others only saw it go: the rank that died is the news
    if errors:
        err = errors[0]["error"]
        message = err["message"]
        hint = err.get("hint") or (UNUSED_HINT if "finished reduction in the prior iteration" in message else
                                   "Run the target under torchrun with the same number of processes to see it.")
        raise TargetError(message, kind="probe", hint=hint)
    if lost:
        r = lost[0]
        tail = r["lost"].strip().splitlines()[-1:] or ["no output"]
        if r.get("timed_out"):
            raise TargetError(f"rank {r['rank']} did not finish in {timeout:.0f} s under DistributedDataParallel "
                              f"(last output: {tail[0]})", kind="probe",
                              hint="One rank waits in a collective the others never reach: do all ranks take the "
                                   "same number of steps?")
        killed = r.get("returncode") == -signal.SIGKILL
        raise TargetError(f"rank {r['rank']} died under DistributedDataParallel"
                          + (" (killed, most likely for lack of memory)" if killed else f": {tail[0]}"), kind="probe",
                          hint=f"Each of the {n} processes holds its own copy of the model and data: try --nproc 2 "
                               "or a smaller batch_size." if killed else "")
    first = results[0]
    if "skip" in first:
        raise SkipProbe(first["skip"])
    sc = ctx.metrics.scalars
    sc.update(first["scalars"])
    lr, rows = _single_process(ctx)
    sc["dist.single_batch"] = rows
    if isinstance(lr, (int, float)) and lr > 0:
        sc["dist.single_lr"] = lr
        if isinstance(sc.get("dist.lr"), (int, float)):
            sc["dist.lr_scale"] = sc["dist.lr"] / lr
    if isinstance(sc.get("dist.global_batch"), (int, float)) and rows:
        sc["dist.batch_scale"] = sc["dist.global_batch"] / rows
    sc["dist.set_epoch_called"] = bool(first.get("set_epoch"))
    ctx.metrics.setup.notes.append(
        f"--nproc {n}: trained under DistributedDataParallel on {n} CPU processes (gloo), {first['epochs']} epochs of "
        f"{first['per_epoch']} steps, with {'; '.join(first.get('notes', []))}.")


PROBE = Probe(name="distributed", doc="Trains the target under DistributedDataParallel on N local CPU processes "
              "(gloo) for three short epochs, watched by doctor.watch on every rank: which samples each rank draws, "
              "whether epochs repeat, whether the parameters stay equal across ranks, BatchNorm and batch sizes.",
              run=run, needs_data=True, budgets=(), opt_in="nproc", order=90,
              cost="3 epochs of at most 16 steps in each of N processes, plus their start (a few seconds)")
