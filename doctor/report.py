"""Typed findings and the Report every output format is rendered from (no torch here)."""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

from pydantic import BaseModel, Field

from doctor.metrics import ErrorRecord, Metrics, ProbeRecord, SetupInfo, Value

REPORT_SCHEMA_VERSION = 1


class Severity(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


class Location(BaseModel):
    module: Optional[str] = None  # module path in the model, e.g. "layer1.0.relu"
    label: Optional[str] = None  # the class, for class-scoped findings
    file: Optional[str] = None
    line: Optional[int] = None


class Evidence(BaseModel):
    """A measured value that made the rule (or a cause) hold."""

    name: str
    value: Value
    unit: str = ""


class RankedCause(BaseModel):
    id: str
    text: str
    fixes: list[str] = Field(default_factory=list)
    # "supported": its `when` held; "possible": it has no `when`; "ruled_out": its `when` was false;
    # "unknown": its `when` needed a metric that was not measured.
    status: Literal["supported", "possible", "ruled_out", "unknown"] = "possible"
    evidence: list[Evidence] = Field(default_factory=list)


class Finding(BaseModel):
    rule: str
    symptom: str
    severity: Severity
    message: str
    location: Location = Field(default_factory=Location)
    evidence: list[Evidence] = Field(default_factory=list)
    charts: list[str] = Field(default_factory=list)  # series names to chart next to the finding
    causes: list[RankedCause] = Field(default_factory=list)  # ranked, most likely first
    references: list[str] = Field(default_factory=list)
    # How sure doctor is: "high" when measured directly or a static suspicion was confirmed by a
    # probe, "medium" for a static suspicion no probe could check, "low" when probes contradict it.
    confidence: Literal["high", "medium", "low"] = "high"
    notes: list[str] = Field(default_factory=list)  # e.g. which probe confirmed or contradicted it


class Status(str, Enum):
    clean = "clean"  # ran, nothing at or above --fail-on
    findings = "findings"  # ran, findings at or above --fail-on
    failed = "failed"  # the target could not be loaded or run to the end


class Report(BaseModel):
    schema_version: int = REPORT_SCHEMA_VERSION
    tool: str = "doctor"
    version: str = ""
    status: Status = Status.clean
    target: str = ""
    fail_on: str = "error"
    duration_s: float = 0.0
    setup: SetupInfo = Field(default_factory=SetupInfo)
    findings: list[Finding] = Field(default_factory=list)  # most severe first
    probes: list[ProbeRecord] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)
    rules_evaluated: int = 0
    rules_skipped: list[str] = Field(default_factory=list)  # rules whose metrics were not measured
    metrics: Optional[Metrics] = Field(default=None, exclude=True)  # for charts; written separately

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out
