"""Evaluate rules against a Metrics document: findings with their evidence and ranked causes.

A rule is evaluated once (scope model), once per layer in forward order (scope layer) or once
per class (scope class). A layer or class that lacks a metric the rule needs is passed over
silently; a rule that could not be decided anywhere is *skipped* (with the reason: which
metrics, from which probe, and why that probe did not run), never counted as passed.

A finding is located in the user's file from Metrics.layer_sites: at its layer (scope layer) or at
the subject its rule's `location:` metric names. A rule with `confirmed_by` / `contradicted_by`
(static suspicion meeting dynamic evidence) sets the finding's confidence: high when confirmed,
medium when the confirmation is false or was not measured, low, and severity info, when contradicted.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

from pydantic import BaseModel, Field

from doctor.engine.expr import EvalError, Expr, Missing
from doctor.engine.template import compact
from doctor.engine.loader import Check, Rule
from doctor.metrics import CATALOGUE, Metrics, ProbeStatus, Value, split_site
from doctor.report import Evidence, Finding, Location, RankedCause, Severity

# Cause statuses, most likely first; ruled-out causes stay listed so the report can say why.
CAUSE_ORDER = {"supported": 0, "possible": 1, "unknown": 2, "ruled_out": 3}


class Judgement(BaseModel):
    findings: list[Finding] = Field(default_factory=list)  # most severe first, then rule id, then forward order
    evaluated: int = 0  # rules decided at least once (fired or passed)
    passed: list[str] = Field(default_factory=list)  # ids of evaluated rules that did not fire
    skipped: list[str] = Field(default_factory=list)  # "rule-id: reason" for rules that could not be decided


class _Subject:
    """Where a rule is evaluated: the whole model, one layer or one class."""

    def __init__(self, rule: Rule, metrics: Metrics, local: Optional[Mapping[str, Value]] = None,
                 context: Optional[dict[str, str]] = None, module: Optional[str] = None):
        self.rule = rule
        self.scalars = metrics.scalars
        self.local = local
        self.context = {"rule": rule.id, **(context or {})}
        self.module = module

    def lookup(self, name: str) -> Any:
        d = CATALOGUE.get(name)
        source = self.local if d is not None and d.scope != "model" else self.scalars
        value = source.get(name) if source is not None else None
        if value is None:
            raise Missing(name)
        return value

    def get(self, name: str) -> Any:
        """A message placeholder: context, param, or metric."""
        if name in self.context:
            return self.context[name]
        if name in self.rule.params:
            return self.rule.params[name]
        return self.lookup(name)

    def evidence(self, expr: Expr, *, with_missing: bool) -> list[Evidence]:
        out = []
        for name in expr.names:
            try:
                value = self.lookup(name)
            except Missing:
                if not with_missing:
                    continue
                value = None  # shown as "not measured"
            d = CATALOGUE.get(name)
            out.append(Evidence(name=name, value=value, unit=d.unit if d else ""))
        return out


def _subjects(rule: Rule, metrics: Metrics) -> Iterator[_Subject]:
    if rule.scope == "layer":
        for layer, values in metrics.layers.items():
            ctx = {"layer": layer, "layer_type": metrics.layer_types.get(layer, "")}
            yield _Subject(rule, metrics, values, ctx, module=layer)
    elif rule.scope == "class":
        for label, values in metrics.classes.items():
            yield _Subject(rule, metrics, values, {"label": str(label)})
    else:
        yield _Subject(rule, metrics)


def judge(rules: list[Rule], metrics: Metrics) -> "Judgement":
    """Evaluate every rule; severity overrides are applied when rules load (see load_rules)."""
    out = Judgement()
    for rule in rules:
        decided, fired = False, False
        missing: dict[str, None] = {}
        other_reason = ""
        for subject in _subjects(rule, metrics):
            try:
                holds = bool(rule.when.evaluate(subject.lookup, rule.params))
            except Missing as m:
                for name in rule.when.names:
                    try:
                        subject.lookup(name)
                    except Missing:
                        missing[name] = None
                other_reason = other_reason or m.reason
                continue
            except EvalError as e:
                other_reason = other_reason or f"cannot evaluate `when`: {e}"
                continue
            decided = True
            if holds:
                fired = True
                out.findings.append(_finding(rule, subject, metrics))
        if decided:
            out.evaluated += 1
            if not fired:
                out.passed.append(rule.id)
        else:
            out.skipped.append(f"{rule.id}: {_skip_reason(rule, metrics, list(missing), other_reason)}")
    # Most severe first; within a severity, upstream families first (the data feeds the model, the
    # model feeds the dynamics), so a root cause is read before the symptoms it explains.
    family = {r.id: FAMILY_ORDER.get(r.source.parent.name, len(FAMILY_ORDER)) for r in rules}
    out.findings.sort(key=lambda f: (-f.severity.rank, family.get(f.rule, 99), f.rule))  # stable: forward order within a rule
    link_consequences(out.findings, {r.id: r for r in rules})
    return out


def link_consequences(findings: list[Finding], rules: Mapping[str, Rule]) -> None:
    """Mark each finding that a fired rule `explains` as a consequence of that rule's finding (DESIGN §8, issue 9).

    The first fired explaining rule, in report order, is the cause; a finding that is itself a consequence
    cannot be one in turn, so chains stop at the root and cycles cannot form.
    """
    fired = [f.rule for f in findings]
    cause_of: dict[str, str] = {}
    for rid in dict.fromkeys(fired):
        rule = rules.get(rid)
        if rule is None or rid in cause_of:
            continue
        for other in rule.spec.explains:
            if other in fired and other not in cause_of and other != rid:
                cause_of[other] = rid
    for f in findings:
        cause = cause_of.get(f.rule)
        if cause is not None and cause_of.get(cause) is None:
            f.consequence_of = cause


FAMILY_ORDER = {"data": 0, "structure": 1, "crash": 2, "dynamics": 3}


def _finding(rule: Rule, subject: _Subject, metrics: Metrics) -> Finding:
    finding = Finding(
        rule=rule.id,
        symptom=rule.symptom,
        severity=rule.severity,
        message=rule.message.render(subject.get),
        location=_locate(rule, subject, metrics),
        evidence=subject.evidence(rule.when, with_missing=False),
        charts=list(rule.spec.evidence),
        causes=_rank_causes(rule, subject),
        references=list(rule.spec.references),
    )
    _weigh(finding, rule, subject, metrics)
    return finding


def _locate(rule: Rule, subject: _Subject, metrics: Metrics) -> Location:
    """The module path (or call) the finding is about, with its file and line when the collector knows them."""
    where = subject.module
    if rule.location is not None:
        try:
            value = subject.lookup(rule.location)
        except Missing:
            value = None
        where = str(value) if value not in (None, "") else where
    loc = Location(module=where, label=subject.context.get("label"))
    site = metrics.layer_sites.get(where) if where else None
    if site:
        loc.file, loc.line = split_site(site)
    return loc


def _truth(when: Expr, rule: Rule, subject: _Subject) -> Optional[bool]:
    """True or False, or None when a metric it reads was not measured."""
    try:
        return bool(when.evaluate(subject.lookup, rule.params))
    except (Missing, EvalError):
        return None


def _shown(subject: _Subject, when: Expr) -> str:
    """The measured values an expression read, as `name = value, ...`."""
    return ", ".join(f"{e.name} = {compact(e.value)}" for e in subject.evidence(when, with_missing=False))


def _note(check: Check, subject: _Subject, lead: str) -> str:
    if check.note is not None:
        return check.note.render(subject.get)
    shown = _shown(subject, check.when)
    return f"{lead}: {shown}." if shown else f"{lead}."


def _weigh(finding: Finding, rule: Rule, subject: _Subject, metrics: Metrics) -> None:
    """Confidence from the rule's confirmed_by / contradicted_by, with a note saying which measurement decided it."""
    seen = {e.name for e in finding.evidence}

    def add_evidence(check: Check) -> None:
        for e in subject.evidence(check.when, with_missing=False):
            if e.name not in seen:
                seen.add(e.name)
                finding.evidence.append(e)

    against = rule.contradicted_by
    if against is not None and _truth(against.when, rule, subject):
        was = finding.severity.value
        finding.confidence = "low"
        finding.severity = Severity.info
        finding.notes.append(_note(against, subject, "Contradicted by measurement")
                             + (f" Lowered from {was} to info." if was != "info" else ""))
        add_evidence(against)
        return
    confirm = rule.confirmed_by
    if confirm is None:
        return
    held = _truth(confirm.when, rule, subject)
    if held:
        finding.confidence = "high"
        finding.notes.append(_note(confirm, subject, "Confirmed by measurement"))
        add_evidence(confirm)
        return
    finding.confidence = "medium"
    if held is None:
        missing = [n for n in confirm.when.names if _missing(subject, n)]
        finding.notes.append("Not confirmed by a measurement: " + _why_missing(missing, metrics) + ".")
    else:
        shown = _shown(subject, confirm.when)
        finding.notes.append("The measurements do not confirm it" + (f" ({shown})" if shown else "") + ".")


def _missing(subject: _Subject, name: str) -> bool:
    try:
        subject.lookup(name)
    except Missing:
        return True
    return False


def _probe_said(metrics: Metrics, probe: str) -> Optional[str]:
    """' (probe P skipped: why)' for a probe that did not run; '' when it ran; None when it is not in the record."""
    rec = metrics.probe(probe) if probe else None
    if rec is None:
        return None
    if rec.status == ProbeStatus.ran:
        return ""
    return f" (probe {probe} {rec.status.value}" + (f": {rec.reason})" if rec.reason else ")")


def _why_missing(names: list[str], metrics: Metrics) -> str:
    parts = []
    for name in names:
        d = CATALOGUE.get(name)
        said = _probe_said(metrics, d.probe) if d is not None else ""
        parts.append(f"{name} was not measured" + (said if said is not None else f" (probe {d.probe} did not run)"))
    return "; ".join(parts) if parts else "a value it needs was not measured"


def _rank_causes(rule: Rule, subject: _Subject) -> list[RankedCause]:
    ranked = []
    for cause in rule.causes:
        evidence: list[Evidence] = []
        if cause.when is None:
            status = "possible"
        else:
            status = {True: "supported", False: "ruled_out", None: "unknown"}[_truth(cause.when, rule, subject)]
            evidence = subject.evidence(cause.when, with_missing=(status == "unknown"))
        ranked.append(RankedCause(id=cause.id, text=cause.text, fixes=list(cause.fixes), status=status, evidence=evidence))
    ranked.sort(key=lambda c: CAUSE_ORDER[c.status])  # stable: file order within a status
    return ranked


def _skip_reason(rule: Rule, metrics: Metrics, missing: list[str], other: str) -> str:
    if rule.scope == "layer" and not metrics.layers:
        return "no per-layer metrics were measured"
    if rule.scope == "class" and not metrics.classes:
        return "no per-class metrics were measured"
    if not missing:
        return other or "not measured"
    by_probe: dict[str, list[str]] = {}
    for name in missing:
        d = CATALOGUE.get(name)
        by_probe.setdefault(d.probe if d else "", []).append(name)
    parts = []
    for probe, names in by_probe.items():
        per_entry = rule.scope != "model" and any(CATALOGUE[n].scope == rule.scope for n in names if n in CATALOGUE)
        text = f"{', '.join(names)} not measured" + (f" for any {rule.scope}" if per_entry else "")
        said = _probe_said(metrics, probe)
        text += said if said else f" (probe {probe})" if probe else ""
        parts.append(text)
    return "; ".join(parts)
