"""Crash facts: what an exception from the user's forward, loss, backward or step says about its cause.

A probe that catches the user's exception hands it here with what was being called (DESIGN §8). The
exception is matched against the messages PyTorch raises for known training faults and reduced to facts
(kind, stage, shapes, dtypes, the user's file:line) that go into the Metrics document as `crash.*`
scalars; crash rules (rules/crash/) are ordinary YAML rules over them. The engine never sees an exception.
A kind is the id of the rule that explains it: the parent reads a failure whose rule fired as a finding,
not as a failed run.
"""

from __future__ import annotations

import os
import re
import traceback
import warnings
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable, Optional

import torch
from torch import nn

from doctor.collect.errors import describe, user_frame
from doctor.metrics import CATALOGUE, Metrics, Value, fmt_site

# (kind, pattern, the stages it may come from or None for any). First match wins, so the narrow patterns
# (a CUDA tensor type named in a type clash) come before the broad ones (any type clash).
_PATTERNS: list[tuple[str, re.Pattern[str], Optional[tuple[str, ...]]]] = [
    ("batchnorm-single-sample", re.compile(r"Expected more than 1 value per channel when training"), None),
    ("loss-without-grad", re.compile(r"does not require grad and does not have a grad_fn"), None),
    ("inplace-modification", re.compile(r"modified by an inplace operation"), None),
    ("backward-twice", re.compile(r"backward through the graph a second time"), None),
    ("device-mismatch", re.compile(r"Expected all tensors to be on the same device|is not on the expected device"
                                   r"|Input type \(torch\.cuda\.\w+\) and weight type \(torch\.\w+\)"
                                   r"|Input type \(torch\.\w+\) and weight type \(torch\.cuda\.\w+\)"
                                   r"|Expected .* to be on (?:the )?device|found at least two devices"
                                   r"|Found no NVIDIA driver|Torch not compiled with CUDA enabled"
                                   r"|No CUDA GPUs are available"), None),
    ("label-range", re.compile(r"Target -?\d+ is out of bounds|device-side assert triggered"
                               r"|t >= 0 && t < n_classes|all elements of target should be between 0 and 1"),
     ("loss", "backward", "step")),
    ("bce-without-sigmoid", re.compile(r"all elements of input should be between 0 and 1"), ("loss",)),
    ("target-dtype-mismatch", re.compile(r"expected target dtype to be|can't be cast to the desired output type"
                                         r"|Found dtype \w+ but expected \w+|expected scalar type Long but found"),
     ("loss", "backward")),
    ("loss-shape-mismatch", re.compile(r"0D or 1D target tensor expected|Expected input batch_size \(\d+\) to match"
                                       r"|must match the size of tensor b|Target size \(.*\) must be the same as input"
                                       r"|target size .* is different to the input size|only batches of spatial targets"
                                       r"|Expected target size|size mismatch \(got input"),
     ("loss",)),
    ("input-dtype-mismatch", re.compile(r"must have the same dtype|Input type \(\w+\) and (?:bias|weight) type"
                                        r"|input dtype \(torch\.\w+\) does not match weight dtype"
                                        r"|Input type \(torch\.\w+\) and weight type|expected scalar type \w+ but found"
                                        r"|'indices' to have one of the following scalar types"),
     ("forward",)),
]

KINDS: tuple[str, ...] = tuple(dict.fromkeys(k for k, _, _ in _PATTERNS))
_LOSS_FUNCS = {"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
               "binary_cross_entropy", "binary_cross_entropy_with_logits", "poisson_nll_loss", "margin_ranking_loss",
               "multilabel_soft_margin_loss", "soft_margin_loss", "hinge_embedding_loss", "cosine_embedding_loss",
               "_infer_size"}


def flag(kind: str) -> str:
    """The boolean metric a kind sets: 'crash.batchnorm_single_sample'."""
    return "crash." + kind.replace("-", "_")


@dataclass
class Call:
    """What was being run when the exception came: the batch, the output if there was one, the loss."""

    stage: str = ""  # forward | loss | backward | step | train_step: empty means read it off the traceback
    where: str = ""  # e.g. "the first forward pass", "probe training_burst"
    inputs: Any = None
    targets: Any = None
    output: Any = None
    loss_name: str = ""
    model: Optional[nn.Module] = None
    extra: dict[str, Value] = field(default_factory=dict)
    site: Optional[tuple[str, int]] = None  # where in the user's file, when the traceback does not pass there


@dataclass
class Crash:
    kind: str
    facts: dict[str, Value]
    file: Optional[str]
    line: Optional[int]


def stage_of(tb: Optional[TracebackType]) -> str:
    """Which part of a training step raised, read off torch's frames in the traceback."""
    stage = "forward"
    for frame in traceback.extract_tb(tb):
        path = frame.filename.replace(os.sep, "/")
        if "/torch/" not in path:
            continue
        if path.endswith(("torch/autograd/__init__.py", "torch/autograd/graph.py")) or (
                path.endswith("torch/_tensor.py") and frame.name == "backward"):
            return "backward"
        if "/torch/optim/" in path:
            return "step"
        if path.endswith("torch/nn/modules/loss.py") or frame.name in _LOSS_FUNCS:
            stage = "loss"
    return stage


def _shape(t: Any) -> Optional[str]:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else None


def _dtype(t: Any) -> Optional[str]:
    return str(t.dtype).removeprefix("torch.") if isinstance(t, torch.Tensor) else None


def _param_dtype(model: Optional[nn.Module]) -> Optional[str]:
    p = next(iter(model.parameters()), None) if model is not None else None
    return _dtype(p)


def _devices(text: str) -> Optional[str]:
    found = list(dict.fromkeys(re.findall(r"\b(cuda(?::\d+)?|cpu|meta|mps)\b", text)))
    return " and ".join(found) if found else None


def forward_site(run: Callable[[], Any], target_file: str) -> Optional[tuple[str, int]]:
    """Where in the user's file the forward operation behind a failing backward ran, found by running the
    forward and backward again under autograd's anomaly mode (slow, so only after a failure)."""
    target = os.path.realpath(target_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly(check_nan=False):
                run()
        except Exception:  # noqa: BLE001 - it is expected to raise again; the warning holds the forward's stack
            pass
    site = None
    for w in caught:
        for path, line in re.findall(r'File "([^"]+)", line (\d+)', str(w.message)):
            if os.path.realpath(path) == target:
                site = (path, int(line))
    return site


def _shape_facts(out: Any, y: Any) -> dict[str, Value]:
    """How the output and the targets differ, for the causes of a loss that rejected them."""
    facts: dict[str, Value] = {"crash.target_float": None, "crash.target_integer": None, "crash.output_ndim": None,
                               "crash.target_unit_dim": None, "crash.batch_differs": None, "crash.width_differs": None}
    if isinstance(y, torch.Tensor):
        facts["crash.target_float"] = bool(y.is_floating_point())
        facts["crash.target_integer"] = not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool
    if isinstance(out, torch.Tensor):
        facts["crash.output_ndim"] = out.dim()
    if isinstance(out, torch.Tensor) and isinstance(y, torch.Tensor) and out.dim() and y.dim():
        facts["crash.target_unit_dim"] = y.dim() >= 2 and 1 in tuple(y.shape[1:]) and tuple(y.shape) != tuple(out.shape)
        facts["crash.batch_differs"] = int(out.shape[0]) != int(y.shape[0])
        facts["crash.width_differs"] = out.dim() == y.dim() >= 2 and int(out.shape[-1]) != int(y.shape[-1])
    return facts


def classify(exc: BaseException, call: Call, target_file: str) -> Optional[Crash]:
    """The known fault an exception from the user's training code points to, or None."""
    text = " ".join(str(exc).split())
    stage = call.stage or stage_of(exc.__traceback__)
    if stage == "train_step":  # a custom step: which part of it raised is in the traceback
        stage = stage_of(exc.__traceback__)
    kind = next((k for k, pat, stages in _PATTERNS if (stages is None or stage in stages) and pat.search(text)), None)
    if kind is None:
        return None
    file, line = user_frame(exc.__traceback__, target_file)
    if file is None and call.site is not None:
        file, line = call.site
    facts: dict[str, Value] = {
        "crash.error": describe(exc),
        "crash.stage": stage,
        "crash.where": call.where or None,
        "crash.input_shape": _shape(call.inputs),
        "crash.input_dtype": _dtype(call.inputs),
        "crash.target_shape": _shape(call.targets),
        "crash.target_dtype": _dtype(call.targets),
        "crash.output_shape": _shape(call.output),
        "crash.output_dtype": _dtype(call.output),
        "crash.param_dtype": _param_dtype(call.model),
        "crash.loss_name": call.loss_name or None,
        "crash.batch_rows": int(call.inputs.shape[0]) if isinstance(call.inputs, torch.Tensor)
        and call.inputs.dim() else None,
    }
    m = re.search(r"output \d+ of (\w+)", text)
    facts["crash.inplace_op"] = m.group(1) if m else None
    m = re.search(r"Target (-?\d+) is out of bounds", text)
    facts["crash.label"] = int(m.group(1)) if m else None
    facts["crash.devices"] = _devices(text) if kind == "device-mismatch" else None
    facts["crash.no_cuda"] = kind == "device-mismatch" and bool(
        re.search(r"Found no NVIDIA driver|Torch not compiled with CUDA|No CUDA GPUs are available", text))
    m = re.search(r"got input size torch\.Size\(\[([\d, ]+)\]\)", text)
    facts["crash.bn_input_shape"] = f"({m.group(1)})" if m else None
    facts.update(_shape_facts(call.output, call.targets))
    facts["crash.inplace_leaf"] = kind == "inplace-modification" and "output 0 of" not in text \
        and not re.search(r"output \d+ of", text)
    facts["crash.embedding_indices"] = "'indices'" in text
    facts.update(call.extra)
    return Crash(kind=kind, facts=facts, file=file, line=line)


# The subject a crash finding is located at (Metrics.layer_sites): the part of the step that raised.
SUBJECTS = {"forward": "forward pass", "loss": "loss", "backward": "backward pass", "step": "optimizer step"}


def record(metrics: Metrics, crash: Crash) -> None:
    """Store a crash's facts; the first crash of a run gives the shared details, every kind its flag."""
    s = metrics.scalars
    if flag(crash.kind) in CATALOGUE:  # kinds explained by another family's rule (label-range) have no flag
        s[flag(crash.kind)] = True
    s["crash.count"] = int(s.get("crash.count") or 0) + 1
    first = s.get("crash.kind") is None
    if first:
        s["crash.kind"] = crash.kind
        s.update({k: v for k, v in crash.facts.items()})
    if crash.file and crash.line and (first or str(s.get("crash.subject")) not in metrics.layer_sites):
        # Located at the first crash that passed through the user's file (one in doctor's own step has no line).
        subject = SUBJECTS.get(str(crash.facts.get("crash.stage")), "crash")
        s["crash.subject"] = subject
        metrics.layer_sites[subject] = fmt_site(crash.file, crash.line)
    elif first:
        s["crash.subject"] = SUBJECTS.get(str(crash.facts.get("crash.stage")), "crash")


def no_crash(metrics: Metrics) -> None:
    """Every kind that did not occur is false, so crash rules pass (not skip) on a run that did not crash."""
    for kind in KINDS:
        if flag(kind) in CATALOGUE:
            metrics.scalars.setdefault(flag(kind), False)
    metrics.scalars.setdefault("crash.count", 0)
