"""Export for deployment: torch.export (and torch.onnx.export with onnx installed) against eager outputs."""

from __future__ import annotations

from typing import Optional

import torch

from doctor.collect.context import model_output
from doctor.collect.deploy import BUDGETS, batch_rows, deploy_model, eval_mode, info, rows_of
from doctor.collect.deploy import export as ex
from doctor.collect.probes import Probe
from doctor.metrics import fmt_site

RECORDS = ("deploy_export", "deploy_onnx")
HELD_OUT = 4  # validation batches compared, eager against exported


def second_batch_size(b: int) -> int:
    """Another batch size than the one exported at: half of it, or twice it for batches under 4 rows."""
    return b // 2 if b >= 4 else 2 * b


def _locate(ctx, fail: ex.Failure) -> str:
    """The subject a finding names, with its file and line recorded in layer_sites."""
    subject = fail.function or type(ctx.setup.model).__name__ + ".forward"
    if fail.file and fail.line:
        subject = f"{subject}, line {fail.line}"
        ctx.metrics.layer_sites[subject] = fmt_site(fail.file, fail.line)
    return subject


def _record_failure(ctx, fail: ex.Failure) -> None:
    """What export-fails reads: the exporter, the construct, the error and the user's line."""
    ctx.metrics.scalars.update({
        "deploy.export_failures": 1, "deploy.export_with": fail.exporter, "deploy.export_kind": fail.kind,
        "deploy.export_construct": fail.construct, "deploy.export_error": fail.error,
        "deploy.export_code": fail.code or "(no line of the target file on the stack)",
        "deploy.export_at": _locate(ctx, fail)})


def run(ctx) -> Optional[dict[str, str]]:
    sc = ctx.metrics.scalars
    held = ctx.val_batches[:HELD_OUT] or ctx.train_batches[-HELD_OUT:]
    x0 = held[0][0]
    b = batch_rows(x0)
    held = [batch for batch in held if batch_rows(batch[0]) == b]  # other sizes: the second-batch-size check's job
    model, weights = deploy_model(ctx)
    sc["deploy.weights"] = weights
    shown = info(ctx)
    shown.weights = weights
    skipped: dict[str, str] = {}
    pinned: list = []  # the lines where the trace pinned a size to a number, for export-mismatch
    with eval_mode(model):
        try:
            prog = ex.export(model, x0, pinned)
        except Exception as exc:  # noqa: BLE001 - whatever stops the export is the finding
            fail = ex.failure(exc, "torch.export", ctx.setup.path)
            sc["deploy.export_ok"] = False
            _record_failure(ctx, fail)
            shown.export = f"failed: {fail.construct}" + (f" at line {fail.line}" if fail.line else "")
            shown.onnx = "not tried: torch.export failed"
            skipped["deploy_onnx"] = "torch.export failed, and the ONNX exporter builds on it"
            return skipped
        sc["deploy.export_ok"] = True
        sc["deploy.export_failures"] = 0
        exported = prog.module()
        diffs: list[torch.Tensor] = []
        scale: list[torch.Tensor] = []
        with torch.no_grad():
            for x, _ in held:  # the same seed for both: random numbers drawn in eval mode are eval-nondeterministic's
                torch.manual_seed(ctx.seed)
                eager = model_output(model, x)
                torch.manual_seed(ctx.seed)
                out = ex.pick(exported(x))
                diffs.append((out.float() - eager.float()).abs().max())
                scale.append(eager.float().abs().max())
        b2 = second_batch_size(b)
        x2 = rows_of(held[0][0], b2)
        batch_note = ""
        eager_fail: Optional[ex.Failure] = None
        with torch.no_grad():
            try:
                torch.manual_seed(ctx.seed)
                eager2 = model_output(model, x2)
            except Exception as exc:  # noqa: BLE001 - the model itself rejects the other batch size
                eager2, eager_fail = None, ex.failure(exc, "eager", ctx.setup.path)
            try:
                torch.manual_seed(ctx.seed)
                out2 = ex.pick(exported(x2))
            except Exception as exc:  # noqa: BLE001 - the exported program rejects it (a guard on the batch size)
                out2, batch_note = None, ex.describe(exc)
        n_diffs = len(diffs)
        if eager2 is not None and out2 is not None and out2.shape == eager2.shape:
            diffs.append((out2.float() - eager2.float()).abs().max())
            scale.append(eager2.float().abs().max())
        vals = torch.stack([torch.stack(diffs), torch.stack(scale)]).tolist()  # one read
    worst = max(vals[0])
    big = max(vals[1])
    sc["deploy.export_max_diff"] = worst
    sc["deploy.export_rel_diff"] = worst / big if big > 0 else worst
    sc["deploy.export_batches"] = n_diffs
    sc["deploy.export_batch_size"] = b
    sc["deploy.export_second_batch"] = b2
    ok2 = eager2 is not None and out2 is not None and tuple(out2.shape) == tuple(eager2.shape)
    sc["deploy.export_batch_ok"] = ok2
    sc["deploy.eager_second_batch_ok"] = eager2 is not None
    if not ok2:
        if eager_fail is not None:
            why = (f"at batch size {b2} the model itself raises ({eager_fail.error}), and the program exported at "
                   f"batch size {b} " + ("rejects it too" if out2 is None else "runs"))
            sc["deploy.export_mismatch_at"] = _locate(ctx, eager_fail)
            sc["deploy.export_code"] = eager_fail.code
        elif out2 is None:
            why = f"the program exported at batch size {b} rejects batch size {b2} ({batch_note})"
            site = ex.pinned_site(pinned, ctx.setup.path)
            if site is not None:  # the line that fixed the batch size, from the guard torch added there
                why += f"; the batch size was fixed at line {site.line}, `{site.code}`"
                sc["deploy.export_mismatch_at"] = _locate(ctx, site)
                sc["deploy.export_code"] = site.code
        else:
            why = (f"at batch size {b2} the exported program returns shape {tuple(out2.shape)}, eager mode "
                   f"{tuple(eager2.shape)}")
        sc["deploy.export_mismatch"] = why
    else:
        sc["deploy.export_mismatch"] = (f"its outputs differ from eager mode by up to {worst:.3g} "
                                        f"({sc['deploy.export_rel_diff']:.1e} of the largest output) over "
                                        f"{n_diffs} held-out batches and one of batch size {b2}")
    shown.export = "ok"  # whether its outputs match closely enough is export-mismatch's call (its tolerance)
    shown.export_max_diff = worst
    shown.export_second_batch = (f"batch {b2}: matches" if ok2 else f"batch {b2}: " + sc["deploy.export_mismatch"])
    reason = ex.onnx_unavailable()
    if reason:
        skipped["deploy_onnx"] = reason
        shown.onnx = "not tried: " + reason
        return skipped
    try:
        with eval_mode(model):
            sc["deploy.onnx_bytes"] = ex.onnx_export(model, x0)
        sc["deploy.onnx_ok"] = True
        shown.onnx = "ok"
    except ImportError as exc:
        skipped["deploy_onnx"] = f"torch.onnx.export needs a package that is missing here ({ex.describe(exc)})"
        shown.onnx = "not tried: " + skipped["deploy_onnx"]
    except Exception as exc:  # noqa: BLE001 - an ONNX export failure is a finding like torch.export's
        fail = ex.failure(exc, "torch.onnx.export", ctx.setup.path)
        sc["deploy.onnx_ok"] = False
        _record_failure(ctx, fail)
        shown.onnx = f"failed: {fail.construct}"
    return skipped


PROBE = Probe(
    name="deploy_export",
    doc="torch.export of the model in eval mode on a validation batch, batch dimension dynamic (and torch.onnx.export "
        "when onnx is installed); compares the exported program's outputs with eager mode on held-out batches and at "
        "a second batch size.",
    run=run, records=RECORDS, cost="one export and 5 forward passes of each kind", order=80, budgets=BUDGETS,
    opt_in="deploy")
