"""Typed findings and the Report every output format is rendered from (no torch here)."""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

from pydantic import BaseModel, Field

from doctor.metrics import ErrorRecord, Metrics, ProbeRecord, SetupInfo, SourceEdit, Value

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


class FixCheck(BaseModel):
    """--verify-fixes: a cause's fix applied in a re-run, and whether the symptom went (DESIGN §8, issue 10)."""

    fix: str  # the fix kind (doctor/collect/fixes/<kind>.py)
    cause: str
    applied: str = ""  # what was changed, with its numbers
    verdict: Literal["confirmed", "partial", "not confirmed"] = "not confirmed"
    still_fires: Optional[bool] = None  # the rule fired again on what was measured with the fix (None: could not tell)
    metric: str = "loss.train_end"  # the headline compared before and after (loss.train_rel_drop when units change)
    before: Optional[float] = None
    after: Optional[float] = None
    summary: str = ""  # one sentence with the numbers
    cost_s: float = 0.0  # seconds the re-run took
    diff: str = ""  # the change to the user's file as a unified diff (suggested, not applied), when its site is known
    edits: list[SourceEdit] = Field(default_factory=list)  # the same change as replacements (SARIF fixes)


class RankedCause(BaseModel):
    id: str
    text: str
    fixes: list[str] = Field(default_factory=list)
    # "supported": its `when` held; "possible": it has no `when`; "ruled_out": its `when` was false;
    # "unknown": its `when` needed a metric that was not measured.
    status: Literal["supported", "possible", "ruled_out", "unknown"] = "possible"
    evidence: list[Evidence] = Field(default_factory=list)
    verification: Optional[FixCheck] = None  # --verify-fixes: its fix tried in a re-run


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
    # Stable identity across runs and line edits: rule + module path or class label (doctor/baseline.py).
    fingerprint: str = ""
    # With --baseline: "new" (gates) or "unchanged" (recorded in the baseline, does not gate).
    baseline: Optional[Literal["new", "unchanged"]] = None
    # Shown under this rule's finding and not counted on its own: the rule's `explains` names this one.
    consequence_of: Optional[str] = None
    # For a suppressed finding: the `# doctor: ignore[...]` comment that silenced it, as file:line.
    suppressed_by: Optional[str] = None
    # --verify-fixes: the first verified fix of its causes, in the ranking before verification
    verification: Optional[FixCheck] = None


class Suppression(BaseModel):
    """A `# doctor: ignore[...]` (line) or `# doctor: ignore-file[...]` (file) comment in the user's code."""

    file: str
    line: int
    kind: Literal["line", "file"] = "line"
    rules: list[str] = Field(default_factory=list)
    problem: str = ""  # why it is reported: unused, names an unknown rule, names no rule


class BaselineEntry(BaseModel):
    fingerprint: str
    rule: str
    subject: str = ""  # module path, "class <label>", or "" for the whole model
    target: str = ""  # the target as written in the baseline (relative to the baseline file)


class BaselineInfo(BaseModel):
    file: str
    known: int = 0  # findings recorded in the baseline (they do not gate)
    new: int = 0  # findings not in it
    absent: list[BaselineEntry] = Field(default_factory=list)  # entries for this target that no longer occur
    written: bool = False  # --write-baseline wrote this file


class RuleInfo(BaseModel):
    """What SARIF's tool.driver.rules[] and JUnit need to know about a rule that was evaluated."""

    id: str
    title: str = ""
    symptom: str = ""
    severity: Severity = Severity.warning  # effective, after configuration
    scope: str = "model"
    family: str = ""  # the rule's folder: data, dynamics, run, or a user's own
    what: str = ""
    why: str = ""
    help: str = ""  # the plain-text `doctor explain RULE`
    help_markdown: str = ""
    params: dict[str, Value] = Field(default_factory=dict)
    explains: list[str] = Field(default_factory=list)  # the rule's `explains`: findings it is the cause of


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
    rules_passed: list[str] = Field(default_factory=list)  # evaluated rules that did not fire
    suppressed: list[Finding] = Field(default_factory=list)  # silenced by a comment; not in `findings`
    unused_suppressions: list[Suppression] = Field(default_factory=list)  # reported as notes, never gate
    baseline: Optional[BaselineInfo] = None
    metrics: Optional[Metrics] = Field(default=None, exclude=True)  # for charts; written separately
    rules: list[RuleInfo] = Field(default_factory=list, exclude=True)  # for SARIF and JUnit; `doctor rules --format json` lists them

    def gating(self) -> list[Finding]:
        """Findings at or above `fail_on` that are not recorded in a baseline: the ones that fail the run."""
        if self.fail_on == "never":
            return []
        rank = Severity(self.fail_on).rank
        return [f for f in self.headlines() if f.severity.rank >= rank and f.baseline != "unchanged"]

    def headlines(self) -> list[Finding]:
        """Findings that stand on their own: not a consequence of another finding in the report."""
        shown = {f.rule for f in self.findings}
        return [f for f in self.findings if f.consequence_of is None or f.consequence_of not in shown]

    def consequences(self, rule: str) -> list[Finding]:
        """The findings shown under `rule`'s finding as its consequences."""
        return [f for f in self.findings if f.consequence_of == rule]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.headlines():
            out[f.severity.value] += 1
        return out

    def unexplained_errors(self) -> list[ErrorRecord]:
        """Failures no finding explains: these make a run failed (exit 3)."""
        return [e for e in self.errors if not e.explained_by]

    def explain_errors(self) -> None:
        """Set each error's `explained_by`: the finding whose rule is its crash's, or explains that rule."""
        fired = {f.rule: f for f in self.findings}
        for e in self.errors:
            if e.crash is None:
                continue
            f = fired.get(e.crash)
            if f is not None:
                e.explained_by = f.consequence_of if f.consequence_of in fired else f.rule
                continue
            rules = {r.id: r for r in self.rules}
            e.explained_by = next((rid for rid in fired if e.crash in rules.get(rid, RuleInfo(id=rid)).explains),
                                  None)
