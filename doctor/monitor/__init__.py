"""doctor.watch: the same rules on the user's own training loop, from statistics reduced on the device.

    with doctor.watch(model, optimizer, every=100, logdir="runs/doctor") as mon:
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            mon.step(loss)
    mon.report("doctor-report")

Only the source of the metrics differs from `doctor check`: the loop instead of doctor's burst. The
engine judges the rules marked `live: true` on a Metrics document the monitor builds, and the report
is rendered by the same templates. The monitor never harms the training: an error in its own code
disables it with one warning and removes its hooks, and it reads tensors without changing them, so
the run goes on as if it were not there.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

HISTORY_STEPS = 2000  # the gradient statistics a judgement reads: the most recent steps, not the whole run
MIN_INTERVAL_S = 1.0  # at most one judgement a second, whatever `every` says (every=1 on a fast loop)
BUFFER_STEPS = 1024  # steps of statistics held on the device between two reads (one host read per buffer)
MAX_WINDOW = 2048  # at most, however large `every` is: the buffers are read when full (a few KB per layer)
SAMPLE_EVERY = 10  # a full pass over the gradients costs about a plain SGD step: at most one step in ten
SAMPLE_BUDGET = 0.006  # the share of the run's time the sampled steps may add
MAX_SAMPLE_EVERY = 1000
JUDGE_BUDGET = 0.002  # the share of the run's time judging may take


class DoctorHalt(RuntimeError):
    """Raised by `Monitor.step` when a rule named in `halt_on` fires: the run is stopped on purpose."""

    def __init__(self, message: str, finding: Any = None) -> None:
        super().__init__(message)
        self.finding = finding


class Monitor:
    """A live monitor; see `doctor.watch`."""

    def __init__(self, model, optimizer=None, *, every: int = 100, logdir: Union[str, Path, None] = None,
                 rules: Optional[Iterable[str]] = None, halt_on: Iterable[str] = (), name: str = "",
                 echo: Union[Callable[[str], None], bool, None] = None, min_interval_s: float = MIN_INTERVAL_S,
                 sample_every: Optional[int] = None, distributed: Optional[bool] = None) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"doctor.watch: every must be a positive whole number of steps, not {every!r}")
        from doctor.engine.loader import load_rules  # noqa: PLC0415
        from doctor.engine.schema import suggest  # noqa: PLC0415

        every_rule = {r.id: r for r in load_rules()}
        live = {rid for rid, r in every_rule.items() if r.spec.live}
        chosen = list(rules) if rules is not None else sorted(live)
        for rid in [*chosen, *halt_on]:
            if rid not in every_rule:
                raise ValueError(f"doctor.watch: unknown rule '{rid}'{suggest(rid, every_rule)}")
            if rid not in live:
                raise ValueError(f"doctor.watch: rule '{rid}' needs doctor's own probes and cannot be judged on a "
                                 f"live run; live rules: {', '.join(sorted(live))}")
        self.rules = [every_rule[r] for r in chosen]
        self.halt_on = set(halt_on)
        # DistributedDataParallel (and DataParallel) wrap the user's module: watch and name the layers inside.
        wrapped = type(model).__name__ in ("DistributedDataParallel", "DataParallel")
        self.model = model.module if wrapped else model
        self.optimizer, self.every = optimizer, every
        # Gradient norms, updates and activations on one step in `sample_every`; the loss on every step. Unless
        # it is given, the period adapts so that the sampled steps cost about SAMPLE_BUDGET of the run's time.
        self.sample_every = sample_every or SAMPLE_EVERY
        self._adaptive = sample_every is None
        self._t_last: Optional[float] = None
        self._dt = {True: 0.0, False: 0.0}  # running mean seconds of a sampled and of a plain step
        self._n_dt = {True: 0, False: 0}
        self.logdir = Path(logdir) if logdir is not None else None
        self.name = name or type(model).__name__
        self.echo = (lambda m: print(m, file=sys.stderr, flush=True)) if echo is None or echo is True else (
            (lambda _m: None) if echo is False else echo)
        self.min_interval_s = min_interval_s
        self.distributed = distributed
        self.steps = 0
        self.disabled = False
        self.closed = False
        self.error: Optional[str] = None
        self.findings: list = []  # every finding so far, first seen first
        self._seen: set[tuple] = set()
        self._train: tuple[list[int], list[float]] = ([], [])
        self._val: tuple[list[int], list[float]] = ([], [])
        self._grad_steps: list = []  # host tensors (steps, layers) of recent gradient norms
        self._totals: list[float] = []
        self._updates: dict[str, float] = {}
        self._acts: dict[str, dict] = {}
        self._next_judge = 0.0  # the first judgement comes at step `every`; later ones are spaced in time
        self._bad = False
        self._stats = None
        self._tb = None
        self._dist = None
        self._started = False
        self._quiet_until = 0  # steps before this one only keep their loss (see step and _plan)

    # -- the user's calls ----------------------------------------------------------------------
    def __enter__(self) -> "Monitor":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> "Monitor":
        if self._started:
            return self
        self._started = True
        try:
            from doctor.monitor import distributed  # noqa: PLC0415
            from doctor.monitor.stats import LiveStats  # noqa: PLC0415

            # What judging needs is imported now, not at the first judgement in the middle of the run.
            import doctor.collect.probes.overfit_batch  # noqa: F401, PLC0415
            import doctor.collect.probes.training_burst  # noqa: F401, PLC0415
            import doctor.engine.evaluate  # noqa: F401, PLC0415
            import doctor.logdir  # noqa: F401, PLC0415

            self._stats = LiveStats(self.model, self.optimizer, min(max(self.every, BUFFER_STEPS), MAX_WINDOW),
                                    self._guard).attach()
            if self.sample_every == 1:
                self._stats.arm()
            self._dist = distributed.Ranks.detect(self.model, self.optimizer, self.distributed)
            if self.logdir is not None and self._is_writer():
                from doctor.monitor.tb import Writer  # noqa: PLC0415

                self._tb = Writer(self.logdir)
        except Exception as exc:  # noqa: BLE001 - the monitor must not stop the run it watches
            self._fail(exc)
        return self

    def step(self, loss: Any, batch: Any = None) -> None:
        """After each optimizer step: the step's loss (a tensor stays on its device; no sync here)."""
        if self.steps + 1 < self._quiet_until:
            # The hot path, most steps: nothing falls due before _quiet_until, so the loss is kept and that is
            # all (in a loop, the monitor's code runs with cold caches: every line here costs about 1 us).
            try:
                self._stats.losses.append(loss.detach())
            except AttributeError:  # a float loss
                self._stats.losses.append(float(loss))
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
                return
            self._stats.filled += 1
            self.steps += 1
            return
        self._step(loss, batch)
        self._plan()

    def _plan(self) -> None:
        """The next step that needs more than its loss kept: timed, sampled or armed, a read, a judgement."""
        if self.disabled or self.closed or not self._started or self._dist is not None or self._stats is None:
            self._quiet_until = 0
            return
        s, se = self.steps, self.sample_every
        first = se - 2 if self._adaptive else se - 1  # phases first..se-1 and 0 are timed, armed or sampled
        r = (s + 1) % se
        after = self._adaptive and r == 1  # the step after a sample is timed with it
        t_phase = s + 1 if r == 0 or after or r >= first else s + 1 + first - r
        t_every = (s // self.every + 1) * self.every
        if not self.halt_on and self._dt[False] > 0:
            # Without halt_on a judgement falls due by the clock, at least min_interval_s apart: the steps
            # that cannot reach it on the measured step time need not look at the clock (every=1, fast loops).
            ahead = int(0.8 * (self._next_judge - time.perf_counter()) / self._dt[False])
            if ahead > self.every:
                t_every = (s + ahead) // self.every * self.every
        t_full = s + max(1, self._stats.window - self._stats.filled)
        self._quiet_until = min(t_phase, t_every, t_full)

    def _step(self, loss: Any, batch: Any) -> None:
        if self.disabled or self.closed:
            return
        if not self._started:
            self.start()
            if self.disabled:
                return
        try:
            # Steps t with t % sample_every == 0 are sampled: their gradients here, their forward and update
            # through hooks armed at the end of step t - 1 and taken off when step t is recorded.
            # A plain step is the hot path (a few microseconds): keep it to the loss, two counters and a check.
            phase = (self.steps + 1) % self.sample_every
            sampled = phase == 0
            self._stats.record(loss, sample=sampled)
            # Timed only around a sampled step: the plain step before it, and the sampled step together with
            # the one after it (which runs slower on the caches the sample cooled: a tenth of a step on a
            # small MLP), are what the period is sized from (timing every step cost more than it saved).
            if self._adaptive and phase == self.sample_every - 2:
                self._t_last = time.perf_counter()  # the plain step after this one is timed from here
            elif self._adaptive and phase == self.sample_every - 1:
                self._time_step(False)
            elif self._adaptive and phase == 1:
                self._time_step(True)
            if self._dist is not None and batch is not None:
                self._dist.see_batch(batch, self.steps)
            self.steps += 1
            if phase == self.sample_every - 1:
                self._stats.arm()
            if self._dist is not None:
                self._distributed_read()
                return
            at_every = self.steps % self.every == 0
            if not at_every and self._stats.filled < self._stats.window:
                return
            due = at_every and time.perf_counter() >= self._next_judge
            # With halt_on, the losses are read every `every` steps (one read, not one per step), so a run that
            # went NaN is stopped within `every` steps however fast it is.
            if self._stats.full() or due or (at_every and self.halt_on):
                went_bad = self._flush()
                if due or went_bad:
                    self._judge()
                self._t_last = None  # a step that read or judged is no measure of what sampling costs
        except DoctorHalt:
            raise
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def val(self, loss: Any, accuracy: Optional[float] = None) -> None:
        """A validation loss at the current step (read to the host: validation is rare)."""
        if self.disabled or self.closed:
            return
        try:
            value = float(loss.detach().float().mean()) if hasattr(loss, "detach") else float(loss)
            self._val[0].append(self.steps)
            self._val[1].append(value)
            if self._tb is not None:
                self._tb.scalar("loss/val", self.steps, value)
                if accuracy is not None:
                    self._tb.scalar("acc/val", self.steps, float(accuracy))
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def close(self) -> None:
        """Judge what is left, write the TensorBoard findings, remove every hook (idempotent)."""
        if self.closed:
            return
        try:
            if not self.disabled and self._stats is not None:
                self._flush()
                self._judge(final=True)
                if self._tb is not None:
                    self._tb.findings(self.findings)
        except DoctorHalt:
            pass  # the run is over either way: the finding is recorded
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self.closed = True
            self._release()

    def report(self, out_dir: Union[str, Path]) -> list[Path]:
        """Write report.html, report.md, report.json, report.sarif, junit.xml and metrics.json under out_dir."""
        from doctor.render import write_outputs  # noqa: PLC0415

        if not self.closed:
            self.close()
        return write_outputs(self._report(), Path(out_dir), tensorboard=False)

    # -- inside ----------------------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A hook that disables the monitor instead of raising inside the user's forward or step."""
        def safe(*args: Any, **kwargs: Any) -> None:
            if self.disabled:
                return None
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
            return None
        return safe

    def _distributed_read(self) -> None:
        """Under torch.distributed every rank reads at the same steps (the reads are collectives); rank 0 judges
        and tells every rank whether to stop, so a halt ends all of them together."""
        from doctor.monitor.distributed import READ_EVERY  # noqa: PLC0415

        if self.steps % max(self.every, READ_EVERY) and not self._stats.full():  # full: at the same step everywhere
            return
        self._flush()
        stop = None
        if self._is_writer() and time.perf_counter() >= self._next_judge:
            try:
                self._judge()
            except DoctorHalt as exc:
                stop = exc
        if self._dist.halt(stop is not None):
            raise stop or DoctorHalt(f"doctor.watch stopped the run at step {self.steps} (rank 0 found a halt_on rule)")

    def _time_step(self, sampled: bool) -> None:
        """Time between step calls, kept apart for a plain step and for a sampled step with the one after it,
        to size the sampling period."""
        now = time.perf_counter()
        if self._t_last is not None and self._adaptive:
            dt = now - self._t_last
            n = min(self._n_dt[sampled] + 1, 50)  # a running mean over about the last 50 of each kind
            if n > 5:  # one step stalled by the machine (a collection, another process) moves it by little
                dt = min(dt, 3 * self._dt[sampled])
            self._dt[sampled] += (dt - self._dt[sampled]) / n
            self._n_dt[sampled] = n
            if sampled and self._n_dt[True] >= 2 and self._n_dt[False] >= 5:
                extra = max(0.0, self._dt[True] - 2 * self._dt[False])
                want = math.ceil(extra / (SAMPLE_BUDGET * max(self._dt[False], 1e-9)))
                self.sample_every = min(max(SAMPLE_EVERY, want), MAX_SAMPLE_EVERY)
        self._t_last = now

    def _fail(self, exc: BaseException) -> None:
        if self.disabled:
            return
        self.disabled = True
        self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        warnings.warn(f"doctor.watch stopped monitoring after step {self.steps} ({self.error}); "
                      "the training goes on unmonitored", RuntimeWarning, stacklevel=3)
        self._release()

    def _release(self) -> None:
        for thing in (self._stats, self._tb, self._dist):
            if thing is None:
                continue
            try:
                thing.detach() if thing is self._stats else thing.close()
            except Exception:  # noqa: BLE001, S110 - releasing must not raise into the training loop
                pass

    def _is_writer(self) -> bool:
        return self._dist is None or self._dist.rank == 0

    def _flush(self) -> None:
        data = self._stats.read()
        if self._dist is not None:
            data = self._dist.gather(data)
        n = data["steps"]
        first = self.steps - n + 1
        steps = list(range(first, self.steps + 1))
        self._train[0].extend(steps)
        self._train[1].extend(data["losses"])
        went_bad = not self._bad and not all(math.isfinite(v) for v in data["losses"])
        self._bad = self._bad or went_bad
        self._totals.extend(data.get("total", []))
        sampled_steps = [first + i for i in data.get("sampled", [])]
        if data.get("layer_norms"):
            import torch  # noqa: PLC0415

            self._grad_steps.append(torch.stack(list(data["layer_norms"].values()), dim=1))
            kept, total = [], 0
            for block in reversed(self._grad_steps):  # the most recent HISTORY_STEPS steps
                kept.append(block)
                total += block.shape[0]
                if total >= HISTORY_STEPS:
                    break
            self._grad_steps = list(reversed(kept))
        if data.get("update_ratio"):
            self._updates = data["update_ratio"]
        self._acts.update(data.get("acts", {}))
        if self._tb is not None:
            self._tb.window(steps, sampled_steps, data)
        return went_bad  # the first non-finite loss is judged at once, whatever the interval says

    def metrics(self):
        """The Metrics document the rules read, from what the run has given so far."""
        import torch  # noqa: PLC0415

        from doctor.catalogue import CATALOGUE  # noqa: PLC0415
        from doctor.collect.instrument import reduce_norms  # noqa: PLC0415
        from doctor.collect.probes.overfit_batch import publish_updates  # noqa: PLC0415
        from doctor.collect.probes.training_burst import publish_acts, publish_grads  # noqa: PLC0415
        from doctor.logdir import run_scalars  # noqa: PLC0415
        from doctor.metrics import Metrics, ProbeRecord, ProbeStatus, Series, SetupInfo  # noqa: PLC0415

        opt = self.optimizer
        setup = SetupInfo(target=self.name, model_class=type(self.model).__name__,
                          optimizer=type(opt).__name__ if opt is not None else "",
                          device=str(self._stats.device) if self._stats else "cpu")
        m = Metrics(target=self.name, budget="watch", setup=setup)
        m.layer_types = {n: type(mod).__name__ for n, mod in self.model.named_modules() if n}
        steps, losses = self._train
        if steps:
            m.series["loss.train"] = Series(x=steps[-4000:], y=[v if math.isfinite(v) else None for v in losses[-4000:]],
                                            y_label="loss")
        if self._val[0]:
            m.series["loss.val"] = Series(x=list(self._val[0]), y=list(self._val[1]), y_label="loss")
        m.scalars.update(run_scalars(steps or None, losses or None, self._val[0] or None, self._val[1] or None))
        if self._dist is not None:
            m.scalars.update(self._dist.scalars())
        if self._grad_steps and self._stats is not None:
            grads = self._stats.grads
            totals = torch.tensor(self._totals[-HISTORY_STEPS:], dtype=torch.float32)
            publish_grads(m, self.model, reduce_norms(torch.cat(self._grad_steps)[-HISTORY_STEPS:], totals, grads.layers, grads.numel))
        if self._acts:
            publish_acts(m, dict(self._acts))
        if self._updates and self._stats is not None:
            publish_updates(m, {"steps": self.steps, "ratio": dict(self._updates), "no_grad": [], "not_moved": [],
                                "params": len(self._stats.grads.params)}, {})
        m.probes.append(ProbeRecord(name="watch", status=ProbeStatus.ran,
                                    measures=["loss.train", "grad.*", "upd.*", "act.*"]))
        for probe in sorted({d.probe for d in CATALOGUE.values()} - {"watch"}):
            m.probes.append(ProbeRecord(name=probe, status=ProbeStatus.skipped,
                                        reason="a live run under doctor.watch: doctor's own probes do not run"))
        return m

    def _judge(self, final: bool = False) -> None:
        from doctor.engine.evaluate import judge  # noqa: PLC0415

        started = time.perf_counter()
        try:
            if self._dist is not None and not self._is_writer():
                return  # rank 0 judges what every rank measured
            self._judge_on(judge(self.rules, self.metrics()), final)
        finally:
            # Judging reads the whole loss curve: on a fast loop it would cost more than the training if it
            # ran every step, so the next one waits at least min_interval_s and 1/JUDGE_BUDGET of this one's time.
            took = time.perf_counter() - started
            self._next_judge = time.perf_counter() + max(self.min_interval_s, took / JUDGE_BUDGET)

    def _judge_on(self, j, final: bool) -> None:
        halt = None
        for f in j.findings:
            key = (f.rule, f.location.module, f.location.label)
            if key in self._seen:
                continue
            self._seen.add(key)
            self.findings.append(f)
            where = f" {f.location.module}" if f.location.module else ""
            self.echo(f"doctor.watch: step {self.steps}: {f.severity.value} {f.rule}{where}: {f.message}")
            if f.rule in self.halt_on and halt is None:
                halt = f
        if self._tb is not None:
            self._tb.flush()
        if halt is not None and not final:
            raise DoctorHalt(f"doctor.watch stopped the run at step {self.steps}: {halt.rule}: {halt.message}", halt)

    def _report(self):
        from doctor import __version__  # noqa: PLC0415
        from doctor.cli import _rule_info  # noqa: PLC0415
        from doctor.engine.evaluate import judge  # noqa: PLC0415
        from doctor.metrics import ErrorRecord  # noqa: PLC0415
        from doctor.report import Report, Status  # noqa: PLC0415

        metrics = self.metrics()
        if self.error:
            metrics.errors.append(ErrorRecord(kind="probe", message=f"doctor.watch stopped after step {self.steps}: "
                                                                      f"{self.error}"))
        j = judge(self.rules, metrics)
        report = Report(version=__version__, target=self.name, fail_on="never", setup=metrics.setup,
                        findings=j.findings, probes=metrics.probes, errors=metrics.errors,
                        rules_evaluated=j.evaluated, rules_skipped=j.skipped, rules_passed=j.passed,
                        metrics=metrics, rules=[_rule_info(r) for r in self.rules])
        report.status = Status.findings if j.findings else Status.clean
        return report


def watch(model, optimizer=None, **kwargs: Any) -> Monitor:
    """A monitor for a training loop: use `with doctor.watch(model, optimizer, every=N) as mon:` and call
    `mon.step(loss)` after each optimizer step; see doctor.monitor.Monitor for the options."""
    return Monitor(model, optimizer, **kwargs)
