"""The deploy figures (--deploy) as label/value rows for the report's setup section, in every format alike."""

from __future__ import annotations

from typing import Optional

from doctor.metrics import DeployInfo


def _ms(v: Optional[float]) -> str:
    return "not measured" if v is None else f"{v:.3g} ms"


def _pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.1%}" if v < 10 else f"{v:.3g}x"


def _drift(d: DeployInfo, metric: Optional[float], out_err: Optional[float], layers: str) -> str:
    if out_err is None:
        return ""
    known = d.fp32_metric is not None and metric is not None
    text = f"{d.metric} {d.fp32_metric:.3g} → {metric:.3g}" if known else ""
    text += ("; " if text else "") + f"outputs change {_pct(out_err)} (RMS)"
    return text + (f"; worst layers {layers}" if layers else "")


def rows(d: Optional[DeployInfo]) -> list[tuple[str, str]]:
    """[(label, value)] of what the deploy probes measured, in a fixed order; empty without --deploy."""
    if d is None:
        return []
    out: list[tuple[str, str]] = []
    if d.weights:
        out.append(("Weights judged", "trained (end of the training burst)" if d.weights == "trained"
                    else "initial (the training burst left none)"))
    if d.params is not None:
        out.append(("Parameters", f"{d.params:,}"))
    if d.size_mb is not None:
        out.append(("Size on disk", f"{d.size_mb:.3g} MB (state_dict)"))
    if d.latency_batch_ms is not None:
        out.append(("Latency, batch 1", f"{_ms(d.latency_b1_ms)} on {d.device} (median of {d.repeats})"))
        out.append((f"Latency, batch {d.batch_size}", f"{_ms(d.latency_batch_ms)} on {d.device}"))
    if d.export:
        extra = [f"largest difference from eager {d.export_max_diff:.3g}"] if d.export_max_diff is not None else []
        extra += [d.export_second_batch] if d.export_second_batch else []
        out.append(("torch.export", d.export + (f" ({'; '.join(extra)})" if extra else "")))
    if d.onnx:
        out.append(("torch.onnx.export", d.onnx))
    if d.eval_max_diff is not None:
        out.append(("Eval determinism", "same output twice" if d.eval_max_diff == 0
                    else f"two calls differ by up to {d.eval_max_diff:.3g}"))
    for label, metric, err, layers in (("int8 (dynamic)", d.int8_metric, d.int8_out_err, d.int8_layers),
                                       ("bfloat16", d.bf16_metric, d.bf16_out_err, d.bf16_layers)):
        text = _drift(d, metric, err, layers)
        if text:
            out.append((label, text))
    return out


def line(d: Optional[DeployInfo]) -> str:
    """The figures on one terminal line ('' without --deploy)."""
    if d is None:
        return ""
    parts = []
    if d.params is not None:
        parts.append(f"{d.params:,} params, {d.size_mb:.3g} MB")
    if d.latency_batch_ms is not None:
        parts.append(f"{_ms(d.latency_b1_ms)} @1, {_ms(d.latency_batch_ms)} @{d.batch_size} ({d.device})")
    if d.export:
        parts.append(f"export {d.export}")
    for name, err in (("int8", d.int8_out_err), ("bf16", d.bf16_out_err)):
        if err is not None:
            parts.append(f"{name} outputs {_pct(err)}")
    return "; ".join(parts)
