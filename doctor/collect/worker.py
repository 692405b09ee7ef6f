"""The collector process: load the target, run the probes in order, save metrics.json after each.

Run by the parent as `python -m doctor.collect.worker WORKDIR`, before the parent knows what to ask:
it imports torch, then waits for its stdin to close and reads WORKDIR/spec.json. Everything it learns is written
to WORKDIR as it goes, so a crash, hang or kill later loses nothing measured before.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path

from doctor.collect.spec import AWAIT_VERIFY, METRICS_FILE, PROGRESS_FILE, SPEC_FILE, CollectSpec
from doctor.metrics import CATALOGUE, ErrorRecord, Metrics, ProbeRecord, ProbeStatus

EXIT_OK, EXIT_USAGE, EXIT_TARGET = 0, 2, 3
_FORWARD_HINT = ("Run the model and loss on one batch by hand to reproduce it; check that the data's shape and "
                 "dtype match what the first layer expects, and the targets what the loss expects.")


class Writer:
    """Atomic writes of metrics.json and of which probe is running."""

    def __init__(self, workdir: Path, metrics: Metrics) -> None:
        self.workdir = workdir
        self.metrics = metrics
        self.started: list[str] = []  # every stage so far: the parent polls, and a fast probe can fall between polls

    def _atomic(self, name: str, text: str) -> None:
        tmp = self.workdir / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.workdir / name)

    def save(self) -> None:
        self._atomic(METRICS_FILE, self.metrics.model_dump_json())

    def running(self, probe: str, records: tuple[str, ...] = ()) -> None:
        self.started.append(probe)
        self._atomic(PROGRESS_FILE, json.dumps({"probe": probe, "records": list(records) or [probe],
                                                "started": time.time(), "history": self.started}))


def _say(msg: str) -> None:
    # The parent shows this as progress; the user's own prints go to the same log.
    print(f"[doctor] {msg}", file=sys.stderr, flush=True)


def _run_shrinking(probe, ctx) -> dict:
    """Run a probe; on out-of-device-memory, halve the batches it trains on and try again (noted in the report)."""
    from doctor.collect.context import is_oom  # noqa: PLC0415 - torch is imported after the spec is read

    while True:
        try:
            return probe.run(ctx) or {}
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is an out-of-memory error
            if not is_oom(exc):
                raise
            exc.__traceback__ = None  # drop the frames that hold the big tensors before retrying
            if not ctx.halve_batch_size(f"probe {probe.name}"):
                raise
            _say(f"probe {probe.name}: out of memory, retrying at batch size {ctx.train_batches[0][0].shape[0]}")


def _static_only(probes, ctx, out: Writer, fail) -> None:
    """Run the static probes on a target that loaded but could not be prepared (a PartialContext)."""
    for probe in probes:
        out.running(probe.name, probe.reported)
        start = time.perf_counter()
        status, reason = ProbeStatus.ran, ""
        try:
            probe.run(ctx)
        except Exception as exc:  # noqa: BLE001 - a failing check must not hide the error that stopped the run
            fail(exc, "probe", f"probe {probe.name} failed", probe=probe.name)
            status, reason = ProbeStatus.failed, ctx.metrics.errors[-1].message
        for name in probe.reported:
            ctx.metrics.probes.append(ProbeRecord(name=name, status=status, reason=reason,
                                                  duration_s=round(time.perf_counter() - start, 3)))


def _fit_to_time(ctx, metrics: Metrics, spent_s: float) -> dict[str, str]:
    """Cut the budget's counts to fit its time, from the step time prepare measured; {probe: why} to skip."""
    from doctor.collect import pace  # noqa: PLC0415

    if ctx.broken is not None or ctx.step_s <= 0:
        return {}
    batch = int(ctx.train_batches[0][0].shape[0])
    fit_s = pace.FIT_S.get(ctx.budget.name, 50.0)
    custom = ctx.setup.train_step is not None
    plan = pace.fit(ctx.budget, ctx.step_s, ctx.forward_s, batch, spent_s, fit_s, custom_step=custom)
    if plan.cut:  # the first pass pays for warm-up and hooks (2-8x a steady step): time real steps before cutting
        t0 = time.perf_counter()
        _retime(ctx)
        plan = pace.fit(ctx.budget, ctx.step_s, ctx.forward_s, batch, spent_s + time.perf_counter() - t0, fit_s,
                        custom_step=custom)
    metrics.scalars["setup.step_s"] = round(ctx.step_s, 4)
    metrics.scalars["setup.time_cut"] = plan.cut
    if not plan.cut:
        return {}
    ctx.full_budget, ctx.budget = ctx.budget, plan.budget
    metrics.setup.notes.append(pace.note(plan, ctx.step_s, batch, fit_s))
    _say(f"one step takes {ctx.step_s:.2g} s: cut to fit {fit_s:.0f} s ({'; '.join(plan.cuts)})")
    return {name: f"cut to fit the {ctx.budget.name} budget's time (one step takes {ctx.step_s:.2g} s): {why}; "
                  "--budget deep runs it" for name, why in plan.skip.items()}


def _retime(ctx) -> None:
    """Time a forward pass and up to two training steps of doctor's own step, keeping the fastest."""
    import torch  # noqa: PLC0415

    def clock() -> float:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        return time.perf_counter()

    from doctor.collect.context import model_output  # noqa: PLC0415

    model = ctx.fresh_model()
    x, _ = ctx.train_batches[0]
    try:
        with torch.no_grad():
            t = clock()
            model_output(model, x)
            ctx.forward_s = min(ctx.forward_s, clock() - t)
        opt, step = ctx.make_optimizer(model), ctx.step_fn()
        spent = 0.0
        for i in range(2):
            t = clock()
            step(model, ctx.train_batches[i % len(ctx.train_batches)], opt)
            took = clock() - t
            ctx.step_s, spent = min(ctx.step_s, took), spent + took
            if spent > 2.0:  # a slow step times well enough once
                break
    except Exception:  # noqa: BLE001 - the probes will meet (and report) whatever this step raised
        pass
    finally:
        ctx.fresh_model()
        model.zero_grad(set_to_none=True)


def _await_spec(workdir: Path) -> bool:
    """Import torch while the parent finishes reading its config; True once it has written spec.json."""
    import torch  # noqa: F401, PLC0415 - the seconds this takes overlap the parent's own start-up

    sys.stdin.read()  # the parent closes our stdin when spec.json is written, or when it gives up
    # The user's code must not read the parent's pipe: stdin is /dev/null from here on.
    with open(os.devnull) as null:
        os.dup2(null.fileno(), 0)  # sys.stdin reads fd 0, so it now gets end-of-file at once
    return (workdir / SPEC_FILE).exists()


def main(workdir: Path) -> int:
    """Collect what spec.json in `workdir` asks for (it must be there already)."""
    spec = CollectSpec.model_validate_json((workdir / SPEC_FILE).read_text())
    metrics = Metrics(target=spec.target, seed=spec.seed, budget=spec.budget)
    out = Writer(workdir, metrics)
    t0 = time.perf_counter()
    out.running("load")
    out.save()

    import torch  # noqa: PLC0415 - run as a process, the worker has it imported already

    from doctor.collect import crash
    from doctor.collect.budget import BUDGETS
    from doctor.collect.crash import Call
    from doctor.collect.context import ForwardError, prepare
    from doctor.collect.errors import error_record
    from doctor.collect.probes import SkipProbe, registry
    from doctor.collect.target import TargetError, load_target

    if spec.device == "cuda" and not torch.cuda.is_available():
        metrics.errors.append(ErrorRecord(kind="load", message="--device cuda was asked for, but CUDA is not available",
                                          hint="Use --device auto or cpu."))
        out.save()
        return EXIT_USAGE
    device = torch.device("cuda" if spec.device == "cuda" or (spec.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    torch.manual_seed(spec.seed)

    def fail(exc: BaseException, kind: str, what: str, hint: str = "", probe: str | None = None,
             call: Call | None = None) -> None:
        rec = error_record(exc, kind=kind, target_file=spec.target, what=what, hint=hint, probe=probe)
        found = crash.classify(exc, call or Call(where=f"probe {probe}" if probe else what), spec.target)
        if found is not None:
            rec.crash = found.kind
            crash.record(metrics, found)
            same = next((e for e in metrics.errors if e.crash == found.kind and e.file == rec.file
                         and e.line == rec.line), None)
            if same is not None:  # the same crash again, in another probe: one error, the probe names it
                rec = same.model_copy(update={"probe": probe, "message": f"probe {probe} failed: the same crash as "
                                                                         f"{same.probe or 'before'} ({found.kind})",
                                              "traceback": "", "duplicate": True})
        metrics.errors.append(rec)

    budget = BUDGETS[spec.budget]
    light = contextlib.nullcontext()
    if spec.static_only:  # one example batch at most, and no validation data
        from doctor.collect.static.light import defer_dynamo_for_torchvision, skip_dynamo_for_optimizers  # noqa: PLC0415

        skip_dynamo_for_optimizers()
        light = defer_dynamo_for_torchvision()
        budget = dataclasses.replace(budget, train_steps=1, eval_batches=0)
        metrics.setup.notes.append("--static: only the static checks ran (one forward pass, no training step).")
    setup = None
    try:
        with light:
            setup = load_target(spec.target, spec.factory, device=str(device), seed=spec.seed)
        if spec.static_only:
            setup.val_data = None
        if not any(True for _ in setup.model.parameters()):
            raise TargetError("the model has no parameters: there is nothing to train", kind="load",
                              hint="If its layers are kept in a plain list or dict, wrap them in nn.ModuleList or "
                                   "nn.ModuleDict so the model (and its optimizer) can see them.")
        out.running("prepare")
        ctx = prepare(setup, metrics, budget, device, spec.seed)
    except TargetError as exc:
        if exc.cause is not None:
            fail(exc.cause, exc.kind, str(exc), exc.hint)
        else:
            metrics.errors.append(ErrorRecord(kind=exc.kind, message=str(exc), hint=exc.hint))  # type: ignore[arg-type]
    except ForwardError as exc:
        fail(exc.cause, "forward", exc.what, _FORWARD_HINT, call=exc.call)
    except Exception as exc:  # noqa: BLE001 - anything else the user's code raises while we set up
        fail(exc, "load", "setting up the target failed")
    if metrics.errors:
        crash.no_crash(metrics)
        if setup is not None:  # the target loaded: the static checks can still explain what is wrong
            from doctor.collect.static.analysis import PartialContext  # noqa: PLC0415

            _static_only(registry(static_only=True), PartialContext(setup, metrics, device, spec.seed), out, fail)
        metrics.duration_s = time.perf_counter() - t0
        out.save()
        return EXIT_TARGET

    ctx.checkpoint = out.save
    ctx.options = {"deploy": spec.deploy, "nproc": spec.nproc, "target": spec.target, "factory": spec.factory}
    skip_for_time = _fit_to_time(ctx, metrics, spent_s=time.perf_counter() - t0) if not spec.static_only else {}
    if isinstance(ctx.broken.cause if ctx.broken else None, TargetError):
        cause = ctx.broken.cause
        metrics.errors.append(ErrorRecord(kind="forward", message=str(cause), hint=cause.hint or _FORWARD_HINT))
    elif ctx.broken is not None:
        fail(ctx.broken.cause, "forward", ctx.broken.what, _FORWARD_HINT, call=ctx.broken.call)
    for probe in registry(static_only=spec.static_only):
        if ctx.broken is not None and probe.needs_model:
            for name in probe.reported:
                metrics.probes.append(ProbeRecord(name=name, status=ProbeStatus.skipped,
                                                  reason="the model's forward pass or loss raised (see the error)"))
            continue
        if probe.name in skip_for_time:
            for name in probe.reported:
                metrics.probes.append(ProbeRecord(name=name, status=ProbeStatus.skipped, reason=skip_for_time[probe.name]))
            continue
        if spec.budget not in probe.budgets and not _opted_in(probe, spec):
            switch = f"--{probe.opt_in}" + (" N" if probe.opt_in == "nproc" else "")
            if not probe.budgets:  # behind its switch only: the budget has nothing to do with it
                why = f"runs only with {switch}"
            else:
                why = (f"not run at --budget {spec.budget}: it runs at {' and '.join(probe.budgets)}"
                       + (f" or with {switch}" if probe.opt_in else ""))
            why += f"; it costs {probe.cost}" if probe.cost else ""
            for name in probe.reported:
                metrics.probes.append(ProbeRecord(name=name, status=ProbeStatus.skipped, reason=why))
            continue
        _say(f"probe {probe.name}")
        out.running(probe.name, probe.reported)
        start = time.perf_counter()
        status, reason, sub = ProbeStatus.ran, "", {}
        try:
            sub = _run_shrinking(probe, ctx)
        except SkipProbe as exc:
            status, reason = ProbeStatus.skipped, str(exc)
        except TargetError as exc:
            status, reason = ProbeStatus.failed, str(exc)
            metrics.errors.append(ErrorRecord(kind="probe", message=f"probe {probe.name}: {exc}", hint=exc.hint,
                                              probe=probe.name))
        except Exception as exc:  # noqa: BLE001 - a probe failing must not take the others down
            status = ProbeStatus.failed
            hint = ""
            if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
                hint = "Out of memory: lower batch_size in the target, or use --device cpu."
            fail(exc, "probe", f"probe {probe.name} failed", hint, probe=probe.name, call=ctx.call(f"probe {probe.name}"))
            reason = metrics.errors[-1].message
        took = time.perf_counter() - start
        for name in probe.reported:
            st, why = (ProbeStatus.skipped, sub[name]) if name in sub and status is ProbeStatus.ran else (status, reason)
            rec = ProbeRecord(name=name, status=st, reason=why, duration_s=round(took, 3),
                              measures=[d.name for d in CATALOGUE.values() if d.probe == name],
                              location=None if not metrics.errors or metrics.errors[-1].probe != probe.name
                              else (f"{metrics.errors[-1].file}:{metrics.errors[-1].line}"
                                    if metrics.errors[-1].file else None))
            metrics.probes.append(rec)
        metrics.duration_s = time.perf_counter() - t0
        out.save()
    if spec.static_only:  # the training probes were not even imported: list what they would have measured
        done = {p.name for p in metrics.probes}
        for name in dict.fromkeys(d.probe for d in CATALOGUE.values()):
            if name not in done and name != "setup":
                metrics.probes.append(ProbeRecord(name=name, status=ProbeStatus.skipped, reason="--static"))
    # Probes skipped after the last one that ran (--static, a broken forward) were recorded but not yet saved.
    crash.no_crash(metrics)
    metrics.duration_s = time.perf_counter() - t0
    out.save()
    if spec.verify_fixes and not spec.static_only:  # a broken step too: a fix may be what mends it
        _verify(ctx, metrics, out, workdir)
    out.running("")
    return EXIT_TARGET if metrics.errors else EXIT_OK


def _opted_in(probe, spec: CollectSpec) -> bool:
    """A probe behind a switch (--deploy, --nproc N) runs at any budget once the switch is on."""
    if probe.opt_in == "nproc":
        return spec.nproc > 1
    return bool(probe.opt_in) and bool(getattr(spec, probe.opt_in, False))


def _verify(ctx, metrics: Metrics, out: Writer, workdir: Path) -> None:
    """--verify-fixes: the parent judges what was saved and names the fixes; apply each and re-measure."""
    from doctor.collect import verify  # noqa: PLC0415

    out.running(AWAIT_VERIFY)
    for request in verify.await_requests(workdir):
        out.running(f"verify {request.fix}", tuple(request.probes))
        _say(f"verify {request.fix} for {request.rule}")
        metrics.verifications.append(verify.run(ctx, request, _say))
        out.save()


def _leave(code: int) -> None:
    """Exit without tearing down torch's modules (most of a second); everything doctor measured is saved by now.

    What a normal exit does first still happens: threads the user's code left running are joined (as before,
    a thread that never ends is stopped by the parent's timeout), then the exit handlers run (multiprocessing's,
    which stops data-loader workers, and the user's). Given up: flushing files the user's code left open and
    unflushed, which the teardown would have closed; doctor's own files are written and closed already.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    shutdown = getattr(threading, "_shutdown", None)  # what Python runs at exit before the atexit handlers
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers Python would run; the module teardown is what we skip
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _leave(main(Path(sys.argv[1])) if _await_spec(Path(sys.argv[1])) else EXIT_USAGE)
