"""SARIF 2.1.0 as GitHub code scanning reads it, serialised from the typed Report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from doctor.render import locate, values
from doctor.render.jsonout import finite_json
from doctor.report import Finding, Report, RuleInfo, Suppression

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
FINGERPRINT_KEY = "doctorFinding/v1"
UNUSED = RuleInfo(id="unused-suppression", title="A doctor suppression comment silences nothing",
                  symptom="", severity="info", family="doctor",
                  what="A `# doctor: ignore[...]` comment whose rule was evaluated but did not fire there, "
                       "or that names an unknown rule.",
                  why="Stale suppressions hide the next real finding at that place; remove them.")


def _text(s: str) -> dict[str, str]:
    return {"text": s}


def _descriptor(r: RuleInfo) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": r.id,
        "name": "".join(w.capitalize() for w in r.id.split("-")),
        "shortDescription": _text(r.title or r.id),
        "fullDescription": _text(" ".join(x for x in (r.what, r.why) if x) or r.title or r.id),
        "defaultConfiguration": {"level": LEVEL[r.severity.value]},
        "properties": {"tags": [t for t in ("training", r.family, r.symptom) if t]},
    }
    if r.help:
        d["help"] = {"text": r.help, **({"markdown": r.help_markdown} if r.help_markdown else {})}
    if r.params:
        d["properties"]["parameters"] = dict(r.params)
    return d


def _location(file: Optional[str], line: int, f: Optional[Finding] = None) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    if file:
        artifact = {"uri": file, "uriBaseId": "%SRCROOT%"} if not os.path.isabs(file) else {"uri": Path(file).as_uri()}
        loc["physicalLocation"] = {"artifactLocation": artifact, "region": {"startLine": max(1, line)}}
    if f is not None:
        subject = values.subject(f.location)
        if f.location.module:
            loc["logicalLocations"] = [{"fullyQualifiedName": f.location.module, "kind": "module"}]
        elif subject:
            loc["logicalLocations"] = [{"name": subject, "kind": "object"}]
    return loc


def _result(f: Finding, report: Report, index: dict[str, int]) -> dict[str, Any]:
    file, line = locate.where(f, report)
    res: dict[str, Any] = {"ruleId": f.rule, "level": LEVEL[f.severity.value], "message": _text(f.message)}
    if f.rule in index:
        res["ruleIndex"] = index[f.rule]
    loc = _location(file, line, f)
    if loc:
        res["locations"] = [loc]
    if f.fingerprint:
        res["partialFingerprints"] = {FINGERPRINT_KEY: f.fingerprint}
    if f.baseline:
        res["baselineState"] = f.baseline
    if f.suppressed_by:
        res["suppressions"] = [{"kind": "inSource", "justification": f"# doctor: ignore at {f.suppressed_by}"}]
    fixes = [x for c in f.causes if c.status in ("supported", "possible") for x in c.fixes][:3]
    res["properties"] = {"symptom": f.symptom, "confidence": f.confidence,
                         **({"fixes": fixes} if fixes else {}),
                         **({"evidence": {e.name: e.value for e in f.evidence}} if f.evidence else {}),
                         **({"verification": f.verification.model_dump(exclude={"diff", "edits"})}
                            if f.verification else {})}
    sarif_fixes = [_fix(c.verification) for c in f.causes
                   if c.verification is not None and c.verification.edits and c.verification.verdict != "not confirmed"]
    if sarif_fixes:
        res["fixes"] = sarif_fixes
    return res


def _fix(fc) -> dict[str, Any]:
    """A verified fix's edits as a SARIF fix: replacements in the user's file, suggested (doctor never applies them)."""
    by_file: dict[str, list] = {}
    for e in fc.edits:
        by_file.setdefault(e.file, []).append(e)
    changes = []
    for file, edits in by_file.items():
        rel = locate.rel(file)
        artifact = {"uri": rel, "uriBaseId": "%SRCROOT%"} if not os.path.isabs(rel) else {"uri": Path(rel).as_uri()}
        changes.append({"artifactLocation": artifact, "replacements": [
            {"deletedRegion": {"startLine": e.line, "startColumn": e.col, "endLine": e.end_line, "endColumn": e.end_col},
             "insertedContent": {"text": e.new_text}} for e in edits]})
    return {"description": _text(f"{fc.applied[0].upper()}{fc.applied[1:]} (verified: {fc.verdict})."),
            "artifactChanges": changes}


def _note(s: Suppression, index: dict[str, int]) -> dict[str, Any]:
    res: dict[str, Any] = {"ruleId": UNUSED.id, "level": "note",
                           "message": _text(f"Suppression comment: {s.problem}"),
                           "locations": [_location(locate.rel(s.file), s.line)]}
    if UNUSED.id in index:
        res["ruleIndex"] = index[UNUSED.id]
    return res


def sarif_dict(report: Report) -> dict[str, Any]:
    rules = list(report.rules)
    known = {r.id for r in rules}
    for f in report.findings + report.suppressed:  # a finding's rule is always described
        if f.rule not in known:
            rules.append(RuleInfo(id=f.rule, symptom=f.symptom, severity=f.severity))
            known.add(f.rule)
    if report.unused_suppressions:
        rules.append(UNUSED)
    index = {r.id: i for i, r in enumerate(rules)}
    results = [_result(f, report, index) for f in values.ordered(report.findings)]
    results += [_result(f, report, index) for f in report.suppressed]
    results += [_note(s, index) for s in report.unused_suppressions]
    notifications = [{"level": "error", "message": _text(e.message + (f" {e.hint}" if e.hint else "")),
                      **({"locations": [_location(locate.rel(e.file), e.line or 1)]} if e.file else {})}
                     for e in report.errors]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "doctor", "version": report.version or "0", "semanticVersion": report.version or "0.0.0",
                            "rules": [_descriptor(r) for r in rules]}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(os.getcwd()).as_uri() + "/"}},
        "invocations": [{"executionSuccessful": report.status.value != "failed",
                         **({"toolExecutionNotifications": notifications} if notifications else {})}],
        "results": results,
        "properties": {"status": report.status.value, "target": report.target, "failOn": report.fail_on,
                       "counts": report.counts(), "suppressed": len(report.suppressed)},
    }
    if report.baseline is not None:
        run["properties"]["baseline"] = {"file": report.baseline.file, "known": report.baseline.known,
                                         "new": report.baseline.new, "absent": len(report.baseline.absent)}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(report: Report) -> str:
    return json.dumps(finite_json(sarif_dict(report)), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"
