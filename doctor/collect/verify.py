"""Apply each fix the parent asks for to a copy of the probes' context and run the probes it names again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from doctor.collect.spec import VERIFY_FILE
from doctor.metrics import CATALOGUE, FixRequest, Metrics, ProbeRecord, ProbeStatus, Verification

POLL_S = 0.02
# The series a before/after chart draws: the training loss, and the validation loss when there is one.
CHARTED = ("loss.train", "loss.val")


def await_requests(workdir: Path) -> list[FixRequest]:
    """Wait for the parent's verify.json (it writes it atomically, once); the parent's timeout bounds the wait."""
    path = workdir / VERIFY_FILE
    while not path.exists():
        time.sleep(POLL_S)
    return [FixRequest.model_validate(r) for r in json.loads(path.read_text())]


def run(ctx, request: FixRequest, say: Callable[[str], None] = lambda _m: None) -> Verification:
    """One fix: apply, re-run its probes on the same seed, batches and budget, keep what they measured."""
    from doctor.collect import fixes  # noqa: PLC0415
    from doctor.collect.probes import SkipProbe, registry  # noqa: PLC0415

    start = time.perf_counter()
    out = Verification(request=request)
    before = ctx.metrics
    module = fixes.load(request.fix)
    try:
        fixed, out.applied = module.apply(ctx)
    except fixes.NotApplicable as exc:
        out.not_applicable = str(exc)
        return out
    except Exception as exc:  # noqa: BLE001 - a model the fix cannot copy or change is a result, not a crash
        out.error = f"the fix could not be applied ({f'{type(exc).__name__}: {exc}'.splitlines()[0]})"
        return out
    if fixed is ctx:
        raise RuntimeError(f"fix {request.fix} changed the probes' own context instead of a copy")
    if ctx.broken is not None:  # the step raised as it was: the fix must make one step work before anything runs
        still = _one_step(fixed)
        if still:
            out.error = f"with the fix, the first training step still raises ({still})"
            out.duration_s = round(time.perf_counter() - start, 3)
            return out
        fixed.broken = None
    wanted = set(getattr(module, "PROBES", request.probes))
    probes = [p for p in registry() if p.name in wanted or wanted & set(p.reported)]
    rerun = {name for p in probes for name in (p.name, *p.reported)}

    def kept(name: str) -> bool:
        d = CATALOGUE.get(name)
        return d is None or d.probe not in rerun

    # The probes write into a fresh document that starts as a copy of the first run's less what the
    # re-run probes measure, so what a rule reads but no re-run probe measures (setup, static facts)
    # stays as it was, and nothing a re-run probe no longer measures (a ReLU swapped out) is left stale.
    after = Metrics(target=before.target, seed=before.seed, budget=before.budget,
                    setup=before.setup.model_copy(deep=True),
                    scalars={k: v for k, v in before.scalars.items() if kept(k)},
                    layers={layer: {k: v for k, v in row.items() if kept(k)} for layer, row in before.layers.items()},
                    layer_types=dict(before.layer_types))
    fixed.metrics, fixed.checkpoint = after, lambda: None  # set, not replaced: a fix may override methods
    for probe in probes:
        say(f"verify {request.fix}: probe {probe.name}")
        status, reason = ProbeStatus.ran, ""
        t = time.perf_counter()
        try:
            probe.run(fixed)
        except SkipProbe as exc:
            status, reason = ProbeStatus.skipped, str(exc)
        except Exception as exc:  # noqa: BLE001 - a fix that breaks the model is a result, not a crash of doctor
            status, reason = ProbeStatus.failed, f"{type(exc).__name__}: {exc}".splitlines()[0]
            out.error = out.error or f"probe {probe.name} failed with the fix applied ({reason})"
        out.probes.append(ProbeRecord(name=probe.name, status=status, reason=reason,
                                      duration_s=round(time.perf_counter() - t, 3)))
    after.scalars.update(getattr(module, "FACTS", {}))
    fix_curves: dict = {}  # a fix's own curves as fixed (a loss swap's score); as it was in out.baseline_series
    if hasattr(module, "measure"):
        try:
            got = module.measure(ctx, fixed)
            out.baseline, measured, out.note = got[:3]
            after.scalars.update(measured)
            for name, (b_curve, a_curve) in (got[3] if len(got) > 3 else {}).items():
                out.baseline_series[name], fix_curves[name] = b_curve, a_curve
        except Exception as exc:  # noqa: BLE001 - the user's data or model raising is a result
            out.error = out.error or f"the fix's own measurement failed ({type(exc).__name__}: {exc})".splitlines()[0]
    if hasattr(module, "edit"):
        out.edits = _edits(module, ctx)
        out.diff = _diff(out.edits)
    out.metric = getattr(module, "COMPARE", out.metric)
    out.scalars, out.layers = after.scalars, after.layers
    out.series = {**{k: v for k, v in after.series.items() if k in CHARTED}, **fix_curves}
    out.duration_s = round(time.perf_counter() - start, 3)
    return out


def _edits(module, ctx) -> list:
    """Where the user's file would change; none when the site cannot be found (never an error of the check)."""
    try:
        return list(module.edit(ctx))
    except Exception:  # noqa: BLE001 - an unusual source file costs the suggestion, not the verification
        return []


def _diff(edits) -> str:
    from doctor.collect.fixes import _source  # noqa: PLC0415

    try:
        return _source.diff(edits)
    except Exception:  # noqa: BLE001 - as above
        return ""


def _one_step(ctx) -> str:
    """One forward, loss and backward on the first batch: '' when it works, else the error in one line."""
    model = ctx.fresh_model()
    try:
        ctx.batch_loss(model, ctx.train_batches[0]).backward()
        return ""
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        model.zero_grad(set_to_none=True)
        ctx.fresh_model()
