"""Drift under dynamic int8 quantisation and bf16: the validation metric and the outputs against fp32, and the
layers most responsible."""

from __future__ import annotations

import math
from typing import Optional

import torch

from doctor.collect.context import model_output
from doctor.collect.deploy import BUDGETS, deploy_model, eval_mode, info, outputs, rel_error, score
from doctor.collect.deploy import drift
from doctor.collect.errors import describe
from doctor.collect.probes import Probe
from doctor.metrics import Series

RECORDS = ("deploy_int8", "deploy_bf16")
EVAL_BATCHES = 8
LAYER_ROWS = 64  # rows of one batch the per-layer errors are measured on


def _drop(ctx, ref: list[float], got: list[float]) -> tuple[str, float, float, float]:
    """(metric name, fp32 value, converted value, drop): accuracy points lost, or the relative rise of the loss."""
    if ctx.task == "classification" and math.isfinite(ref[1]):
        return "accuracy", ref[1], got[1], ref[1] - (got[1] if math.isfinite(got[1]) else 0.0)
    rise = (got[0] - ref[0]) / max(abs(ref[0]), 1e-8) if math.isfinite(got[0]) else math.inf
    return "loss", ref[0], got[0], rise


def run(ctx) -> Optional[dict[str, str]]:
    model, weights = deploy_model(ctx)
    shown = info(ctx)
    shown.weights = shown.weights or weights
    batches = ctx.val_batches[:EVAL_BATCHES] or ctx.train_batches[-EVAL_BATCHES:]
    small = [(drift.pytree.tree_map(lambda t: t[:LAYER_ROWS] if isinstance(t, torch.Tensor) and t.dim() else t,
                                    batches[0][0]), None)]
    skipped: dict[str, str] = {}
    with eval_mode(model):
        ref = outputs(model, batches)
        ref_vals = score(ctx, ref, batches).tolist()  # one read
        ref_all = torch.cat([o.reshape(-1) for o in ref])

        # --- int8: dynamic quantisation of Linear and LSTM layers (CPU kernels) ---
        why = ""
        for fused_safe in (False, True):
            try:
                why = _int8(ctx, model, batches, small, ref_vals, ref_all, fused_safe)
                break
            except Exception as exc:  # noqa: BLE001 - a deepcopy, quantize_dynamic or the int8 model raised
                why = f"dynamic int8 quantisation could not be applied or run ({describe(exc)})"
        if why:
            skipped["deploy_int8"] = why

        # --- bf16: the whole model and its floating inputs cast to bfloat16 ---
        try:
            low, lnames = drift.bf16_copy(model)
            with torch.no_grad():
                b_out = [model_output(low, drift.cast_input(x, torch.bfloat16)).float() for x, _ in batches]
                errs = drift.layer_errors(model, low, lnames, small[0][0],
                                          lambda a: drift.cast_input(a, torch.bfloat16))
            got, out_err, layer = _compare(ctx, b_out, batches, ref_all, errs)
            _publish(ctx, "bf16", got, out_err, layer, ref_vals, len(lnames))
        except Exception as exc:  # noqa: BLE001 - an op without a bf16 kernel on this device
            skipped["deploy_bf16"] = f"the model does not run in bfloat16 here ({describe(exc)})"
    return skipped


def _int8(ctx, model, batches, small, ref_vals, ref_all, fused_safe: bool) -> str:
    """Quantise, compare and publish; the reason it measured nothing, or ''."""
    fp32, q, names = drift.int8_copy(model, fused_safe)
    if not names:
        return "no Linear or LSTM layers: dynamic int8 quantisation has nothing to replace"
    cpu = torch.device("cpu")
    with torch.no_grad():
        q_out = [model_output(q, drift.cast_input(x, torch.float32, cpu)).to(ctx.device) for x, _ in batches]
        errs = drift.layer_errors(fp32, q, names, drift.cast_input(small[0][0], torch.float32, cpu), lambda a: a)
    got, out_err, layer = _compare(ctx, q_out, batches, ref_all, errs)
    _publish(ctx, "int8", got, out_err, layer, ref_vals, len(names))
    return ""


def _compare(ctx, outs: list[torch.Tensor], batches: list, ref_all: torch.Tensor, errs: dict[str, torch.Tensor]
             ) -> tuple[list[float], float, dict[str, float]]:
    """The converted model's [loss, accuracy], its RMS output change against fp32, and each layer's own error:
    computed on the device, read in one go."""
    per_layer = [e.to(ctx.device) for e in errs.values()]
    out_err = rel_error(torch.cat([o.reshape(-1) for o in outs]), ref_all)
    vals = torch.cat([score(ctx, outs, batches), out_err.reshape(1), *(e.reshape(1) for e in per_layer)]).tolist()
    return vals[:2], drift.finite(vals[2]), {n: drift.finite(v) for n, v in zip(errs, vals[3:])}


def _publish(ctx, kind: str, got: list[float], out_err: float, layer: dict[str, float], ref: list[float],
             n_layers: int) -> None:
    sc = ctx.metrics.scalars
    metric, before, after, drop = _drop(ctx, ref, got)
    sc["deploy.metric"], sc["deploy.fp32_metric"] = metric, before
    sc[f"deploy.{kind}_metric"], sc[f"deploy.{kind}_drop"], sc[f"deploy.{kind}_out_err"] = after, drop, out_err
    if kind == "int8":
        sc["deploy.int8_layers"] = n_layers
    if layer:
        worst = max(layer, key=layer.get)
        sc[f"deploy.{kind}_worst_layer"] = worst
        sc[f"deploy.{kind}_worst_layers"] = drift.top_layers(layer, ctx.metrics.layer_types)
        sc[f"deploy.{kind}_layer_err_max"] = layer[worst]
        ctx.metrics.series[f"deploy.{kind}_err_by_layer"] = Series(
            x=list(layer), y=[v if math.isfinite(v) else None for v in layer.values()], x_label="layer (forward order)",
            y_label=f"relative output error, {kind} alone", log_y=True)
    shown = info(ctx)
    shown.metric, shown.fp32_metric = metric, before
    setattr(shown, f"{kind}_metric", after)
    setattr(shown, f"{kind}_out_err", out_err)
    setattr(shown, f"{kind}_layers", drift.top_layers(layer, ctx.metrics.layer_types) if layer else "")


PROBE = Probe(
    name="deploy_quant",
    doc="Dynamic int8 quantisation of Linear/LSTM layers (CPU) and a bfloat16 cast of the whole model, each against "
        "fp32 on up to 8 validation batches: the change of the validation metric (accuracy, else loss) and the RMS "
        "change of the outputs; each converted layer run alone on its fp32 input gives the layers most responsible.",
    run=run, records=RECORDS, cost="2 x 8 forward passes and one per converted layer", order=83, budgets=BUDGETS,
    opt_in="deploy")
