"""The Metrics document the collector writes and the judge reads, and its catalogue of names.

This module must not import torch: the parent process, the rule engine and the renderers
use it on a machine where the collector may never run (a saved metrics.json).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field

from doctor.catalogue import CATALOGUE, SERIES, MetricDef, MetricKind, Scope  # noqa: F401 - re-exported

SCHEMA_VERSION = 1

Value = Union[float, int, bool, str, None]



def fmt_site(file: str, line: int) -> str:
    """A site, as `Metrics.layer_sites` holds them: 'file:line'."""
    return f"{file}:{line}"


def split_site(site: str) -> tuple[str, Optional[int]]:
    """'file:line' -> (file, line); the file may itself hold ':' (Windows drives)."""
    head, sep, tail = site.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return site, None

class Series(BaseModel):
    """A sequence of values: a curve over steps, or values over named categories (layers, classes)."""

    x: list[Union[float, int, str]]
    y: list[Optional[float]]
    x_label: str = "step"
    y_label: str = ""
    log_y: bool = False
    reference: Optional[float] = None  # a horizontal line: an expected value or a threshold


class ProbeStatus(str, Enum):
    ran = "ran"
    skipped = "skipped"
    failed = "failed"


class ProbeRecord(BaseModel):
    name: str
    status: ProbeStatus
    reason: str = ""  # why it was skipped or how it failed
    duration_s: float = 0.0
    measures: list[str] = Field(default_factory=list)
    location: Optional[str] = None  # "file:line" in the user's code when a failure points there


class ErrorRecord(BaseModel):
    """A failure the collector met: where, what, and what to do about it."""

    kind: Literal["load", "no_model", "forward", "probe", "timeout", "crash", "internal"]
    message: str
    hint: str = ""
    file: Optional[str] = None
    line: Optional[int] = None
    probe: Optional[str] = None
    traceback: str = ""  # shown only with -v
    # The rule whose finding would explain this failure (doctor/collect/crash.py), when its exception is a known one;
    # the parent sets `explained_by` to the rule whose finding does, and such a run exits with findings, not failed.
    crash: Optional[str] = None
    explained_by: Optional[str] = None
    duplicate: bool = False  # the same crash as an earlier error, met again in another probe


class DeployInfo(BaseModel):
    """--deploy: what the model costs at inference and how it exports and quantises (the report's setup section)."""

    weights: str = ""  # the weights judged: "trained" (the training burst's last) or "initial"
    device: str = ""
    params: Optional[int] = None
    size_mb: Optional[float] = None  # torch.save of the state_dict
    batch_size: Optional[int] = None  # the training batch size the second latency is measured at
    latency_b1_ms: Optional[float] = None  # median over `repeats` timed calls after warm-up, eval mode, no grad
    latency_batch_ms: Optional[float] = None
    repeats: int = 0
    export: str = ""  # torch.export: "ok", or what stopped it
    export_max_diff: Optional[float] = None  # largest |exported - eager| over the held-out batches
    export_second_batch: str = ""  # what happened at the second batch size
    onnx: str = ""  # torch.onnx.export: "ok", what stopped it, or why it was not tried
    eval_max_diff: Optional[float] = None  # largest difference between two eval-mode calls on the same batch
    metric: str = ""  # the validation metric the drifts are measured on: "accuracy" or "loss"
    fp32_metric: Optional[float] = None
    int8_metric: Optional[float] = None
    int8_out_err: Optional[float] = None  # relative RMS change of the outputs
    int8_layers: str = ""  # the layers most responsible, with their own output errors
    bf16_metric: Optional[float] = None
    bf16_out_err: Optional[float] = None
    bf16_layers: str = ""


class SetupInfo(BaseModel):
    target: str = ""
    model_class: str = ""
    task: str = ""
    loss: str = ""
    optimizer: str = ""
    batch_size: int = 0
    device: str = "cpu"
    defaults_used: list[str] = Field(default_factory=list)  # e.g. "optimizer: Adam(lr=1e-3)"
    notes: list[str] = Field(default_factory=list)
    deploy: Optional[DeployInfo] = None  # --deploy (or --budget deep): inference cost, export and drift figures


class FixRequest(BaseModel):
    """One fix the parent asks the collector to apply and re-measure (--verify-fixes)."""

    rule: str
    cause: str
    fix: str  # a fix kind: doctor/collect/fixes/<kind>.py
    probes: list[str] = Field(default_factory=list)  # the probes to re-run with the fix applied


class SourceEdit(BaseModel):
    """One replacement in the user's file that makes a verified fix permanent (suggested, never applied).

    Lines and columns are 1-based, columns count characters and the end column is exclusive (as SARIF's
    regions); an insertion has an empty old_text and end equal to start.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    old_text: str = ""
    new_text: str = ""


class Verification(BaseModel):
    """What the probes measured again with one fix applied, on the same seed and batches."""

    request: FixRequest
    applied: str = ""  # what was changed, in one sentence with its numbers ("" when it could not be applied)
    not_applicable: str = ""  # why the fix had nothing to change in this setup
    error: str = ""  # a probe that failed with the fix applied
    # The headline compared before and after: the final training loss, or, for a fix that changes the
    # loss's units (a loss swapped, targets rescaled), the share of its start the loss lost.
    metric: str = "loss.train_end"
    duration_s: float = 0.0
    scalars: dict[str, Value] = Field(default_factory=dict)
    layers: dict[str, dict[str, Value]] = Field(default_factory=dict)
    series: dict[str, Series] = Field(default_factory=dict)
    probes: list[ProbeRecord] = Field(default_factory=list)
    # What a fix measured itself on the unchanged setup (drop-last: whether the epoch's last batch trains),
    # compared with the same names in `scalars`; the first run's value is used for names not here.
    baseline: dict[str, Value] = Field(default_factory=dict)
    note: str = ""  # the fix's own measurement, in one sentence
    # The fix's own curves (a loss swap's validation score over steps): as it was here, with the fix in `series`.
    baseline_series: dict[str, Series] = Field(default_factory=dict)
    edits: list[SourceEdit] = Field(default_factory=list)  # where the user's file would change, when known
    diff: str = ""  # those edits as a unified diff of the user's file


class Metrics(BaseModel):
    """Everything the collector measured, JSON-serialisable. Missing names were not measured."""

    schema_version: int = SCHEMA_VERSION
    target: str = ""
    seed: int = 0
    budget: str = "standard"
    duration_s: float = 0.0
    setup: SetupInfo = Field(default_factory=SetupInfo)
    scalars: dict[str, Value] = Field(default_factory=dict)
    layers: dict[str, dict[str, Value]] = Field(default_factory=dict)  # layer -> name -> value
    layer_types: dict[str, str] = Field(default_factory=dict)  # layer -> module class name
    # Where each layer (module path) was constructed in the user's file, as "file:line"; also other subjects
    # static findings name, such as "F.softmax in Net.forward". The judge fills finding locations from it.
    layer_sites: dict[str, str] = Field(default_factory=dict)
    classes: dict[str, dict[str, Value]] = Field(default_factory=dict)  # class label -> name -> value
    series: dict[str, Series] = Field(default_factory=dict)
    probes: list[ProbeRecord] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)
    verifications: list[Verification] = Field(default_factory=list)  # --verify-fixes: the re-measured fixes

    def probe(self, name: str) -> Optional[ProbeRecord]:
        return next((p for p in self.probes if p.name == name), None)
