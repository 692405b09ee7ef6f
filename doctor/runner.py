"""Parent side of collection: run the collector in a child process under a time limit, keep what it saved.

No torch here: the parent stays light, and a crash, hang or OOM in user code costs only the child.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from doctor.collect.spec import (AWAIT_VERIFY, LOG_FILE, METRICS_FILE, PROGRESS_FILE, SPEC_FILE, VERIFY_FILE,
                                 CollectSpec)
from doctor.metrics import ErrorRecord, FixRequest, Metrics, ProbeRecord, ProbeStatus

# --verify-fixes: given what the probes measured, the fixes to apply and re-measure (none: an empty list)
PlanFixes = Callable[[Metrics], list[FixRequest]]


@dataclass
class Collected:
    metrics: Metrics
    returncode: int  # the child's: 0 ok, 2 usage, 3 target error, negative: killed by a signal
    log: str  # the child's stdout and stderr, the user's prints included
    timed_out: bool = False


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def _kill(child: subprocess.Popen) -> None:
    """SIGKILL the collector's whole process group (its DataLoader workers too) and reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _on_sigterm_raise():
    """Turn SIGTERM into an exception while we wait, so the child is killed on the way out."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (doctor used as a library): leave signals alone
        return None


class Collector:
    """The collector process, started before its spec is known.

    It imports torch (most of its start-up) while the parent is still reading its config and rules,
    then waits for the parent to close its stdin, the sign that spec.json is written.
    """

    def __init__(self) -> None:
        # From now until close(), SIGTERM (a cancelled CI job) unwinds through close() instead of
        # leaving the temporary directory behind.
        self._previous = _on_sigterm_raise()
        self._tmp = tempfile.TemporaryDirectory(prefix="doctor-")
        self.work = Path(self._tmp.name)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        self._log = None
        try:
            self._log = open(self.work / LOG_FILE, "wb")  # noqa: SIM115 - closed in close()
            self.child = subprocess.Popen(
                [sys.executable, "-m", "doctor.collect.worker", str(self.work)],
                stdin=subprocess.PIPE, stdout=self._log, stderr=self._log, env=env,
                start_new_session=True,  # its own process group, so a kill takes its workers too
            )
        except BaseException:
            if self._log is not None:
                self._log.close()
            self._tmp.cleanup()
            self._restore()
            raise

    def send(self, spec: CollectSpec) -> None:
        (self.work / SPEC_FILE).write_text(spec.model_dump_json())
        self.child.stdin.close()  # nothing was written to the pipe, so closing it cannot fail on a dead child

    def close(self) -> None:
        """Kill it if it still runs (the parent gave up, or was interrupted) and remove its files."""
        try:
            if self.child.poll() is None:
                _kill(self.child)
            with contextlib.suppress(OSError):
                self.child.stdin.close()
            self._log.close()
            self._tmp.cleanup()
        finally:
            self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def collect(spec: CollectSpec, timeout_s: float, *, progress: Callable[[str], None] = lambda _m: None,
            meanwhile: Callable[[], None] = lambda: None, collector: Optional[Collector] = None,
            plan_fixes: Optional[PlanFixes] = None) -> Collected:
    """Run the collector on `spec`; always returns Metrics, with an ErrorRecord when the child failed.

    `collector` is one started earlier (`Collector()`), else one starts now; either way it is closed here.
    `meanwhile` runs in this process once the spec is sent (the child may still be importing torch);
    if it raises, the child is killed and the exception propagates.
    """
    collector = collector or Collector()
    try:
        return _wait(collector, spec, timeout_s, progress, meanwhile, plan_fixes)
    finally:
        collector.close()


def _answer(work: Path, plan_fixes: Optional[PlanFixes]) -> None:
    """Judge what the collector saved and write the fixes it should verify (atomically: it polls for the file)."""
    requests: list[FixRequest] = []
    raw = _read_json(work / METRICS_FILE)
    if plan_fixes is not None and raw:
        requests = plan_fixes(Metrics.model_validate(raw))
    tmp = work / (VERIFY_FILE + ".tmp")
    tmp.write_text(json.dumps([r.model_dump() for r in requests]))
    os.replace(tmp, work / VERIFY_FILE)


def _wait(collector: Collector, spec: CollectSpec, timeout_s: float, progress: Callable[[str], None],
          meanwhile: Callable[[], None], plan_fixes: Optional[PlanFixes] = None) -> Collected:
    work, child = collector.work, collector.child
    collector.send(spec)
    deadline = time.monotonic() + timeout_s
    shown = 0  # stages of the child's progress history already passed to `progress`
    timed_out = False

    def show_new() -> dict:
        """Pass on the stages the child reached since the last poll; its progress state."""
        nonlocal shown
        state = _read_json(work / PROGRESS_FILE) or {}
        history = state.get("history") or []
        for stage in history[shown:]:
            progress(stage)
        shown = max(shown, len(history))
        return state

    # Ctrl-C or SIGTERM (a cancelled CI job) raise out of here; collect() then closes the collector,
    # which kills the child (it has its own session, so it would outlive us).
    meanwhile()
    answered = False
    while child.poll() is None:
        state = show_new()
        if not answered and spec.verify_fixes and state.get("probe") == AWAIT_VERIFY:
            answered = True
            _answer(work, plan_fixes)
        if time.monotonic() > deadline:
            timed_out = True
            _kill(child)
            break
        time.sleep(0.05)
    show_new()  # the stages the child got through after the last poll
    rc = child.returncode
    raw = _read_json(work / METRICS_FILE)
    unreadable = ""
    try:
        metrics = Metrics.model_validate(raw) if raw else None
    except ValueError as exc:  # a worker from another doctor version on the path, or a user's code writing over it
        metrics, unreadable = None, str(exc).splitlines()[0]
    if metrics is None:
        metrics = Metrics(target=spec.target, seed=spec.seed, budget=spec.budget)
    if unreadable:  # nothing measured can be shown: the run must not pass as clean
        metrics.errors.append(ErrorRecord(
            kind="internal", message=f"the collector's metrics document could not be read ({unreadable})",
            hint="Check that the `doctor` on the PATH and the one its Python imports are the same version."))
    state = _read_json(work / PROGRESS_FILE) or {}
    log_text = (work / LOG_FILE).read_text(errors="replace")

    running = state.get("probe") or ""
    records = state.get("records") or ([running] if running else [])
    stage = running or ("start" if not state else "")  # no progress at all: it never got as far as the spec
    where = {"": "", "start": " while starting (importing torch)",
             "load": " while loading the target (importing the file, building the model)",
             "prepare": " while preparing (reading the first batches, the first forward pass)"}.get(
        stage, f" while running probe '{stage}'")
    if timed_out:
        metrics.errors.append(ErrorRecord(
            kind="timeout", probe=running or None,
            message=f"the collector did not finish within {timeout_s:g} s{where}; it was stopped",
            hint=("Importing the file must not train: put training code under `if __name__ == \"__main__\":`. "
                  if running == "load" else "")
                 + "Something in the target may hang (a data loader waiting forever, an endless loop), or the model "
                 "is slow for this budget: try --budget quick or a larger --timeout.",
        ))
    elif rc < 0 or (rc not in (0, 2, 3)):
        died = f"died ({_signal_name(rc)})" if rc < 0 else f"exited with status {rc}"
        tail = "\n".join(log_text.strip().splitlines()[-3:])
        metrics.errors.append(ErrorRecord(
            kind="crash", probe=running or None,
            message=f"the collector process {died}{where}",
            hint="A native crash (os.abort, a segfault in an extension, the OS killing it for memory) ends the "
                 "process without a Python error; run with -v to see its log.",
            traceback=tail,
        ))
    if (timed_out or rc < 0 or rc not in (0, 2, 3)) and running not in ("", "load", "prepare"):
        done = {p.name for p in metrics.probes}
        reason = metrics.errors[-1].message
        for name in records:
            if name not in done:
                metrics.probes.append(ProbeRecord(name=name, status=ProbeStatus.failed, reason=reason))
    return Collected(metrics=metrics, returncode=rc, log=log_text, timed_out=timed_out)
