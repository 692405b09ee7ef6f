"""JUnit XML: one testcase per rule (passed, failed, or skipped for lack of measurements), from the typed Report.

A testcase fails when its rule has a finding that gates the run (at or above --fail-on and not in
the baseline), so the XML agrees with the exit code; findings that do not gate, baselined and
suppressed ones are listed in the testcase's system-out. A target that could not be run is an
<error> testcase of its own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from doctor.render import values
from doctor.report import Finding, Report


def _describe(f: Finding) -> str:
    where = values.subject(f.location)
    fl = values.fileline(f.location.file, f.location.line)
    head = f"{f.severity.value}: {f.message}"
    lines = [head] + ([f"  at {', '.join(x for x in (where, fl) if x)}"] if where or fl else [])
    for c in f.causes:
        if c.status in ("supported", "possible"):
            lines.append(f"  {c.status}: {c.text}")
            lines += [f"    fix: {x}" for x in c.fixes]
    return "\n".join(lines)


def _rule_order(report: Report) -> list[str]:
    ids = [r.id for r in report.rules]
    seen = set(ids)
    extra = [f.rule for f in report.findings + report.suppressed] + report.rules_passed + \
        [s.split(":", 1)[0] for s in report.rules_skipped]
    for rid in extra:
        if rid not in seen:
            ids.append(rid)
            seen.add(rid)
    return ids


def junit_tree(report: Report) -> ET.Element:
    family = {r.id: r.family for r in report.rules}
    skipped = dict(s.split(": ", 1) if ": " in s else (s, "not measured") for s in report.rules_skipped)
    passed = set(report.rules_passed)
    gating = {id(f) for f in report.gating()}
    by_rule: dict[str, list[Finding]] = {}
    for f in report.findings + report.suppressed:
        by_rule.setdefault(f.rule, []).append(f)

    suites = ET.Element("testsuites", name="doctor")
    suite = ET.SubElement(suites, "testsuite", name=f"doctor: {report.target}" if report.target else "doctor",
                          time=f"{report.duration_s:.2f}")
    props = ET.SubElement(suite, "properties")
    for k, v in (("target", report.target), ("status", report.status.value), ("fail_on", report.fail_on),
                 ("doctor_version", report.version), ("suppressed", str(len(report.suppressed)))):
        ET.SubElement(props, "property", name=k, value=v)
    tests = failures = errors = skips = 0
    for rid in _rule_order(report):
        findings = by_rule.get(rid, [])
        if not findings and rid not in passed and rid not in skipped:
            continue  # selected but neither decided nor skipped: not part of this check
        tests += 1
        case = ET.SubElement(suite, "testcase", classname=f"doctor.{family.get(rid) or 'rules'}", name=rid, time="0")
        failing = [f for f in findings if id(f) in gating]
        quiet = [f for f in findings if id(f) not in gating]
        if failing:
            failures += 1
            worst = values.ordered(failing)[0]
            el = ET.SubElement(case, "failure", type=worst.severity.value,
                               message=worst.message if len(failing) == 1 else f"{len(failing)} findings: {worst.message}")
            el.text = "\n\n".join(_describe(f) for f in values.ordered(failing))
        elif rid in skipped and not findings:
            skips += 1
            ET.SubElement(case, "skipped", message=skipped[rid])
        if quiet:
            why = {id(f): ("suppressed by " + f.suppressed_by) if f.suppressed_by else
                   "in the baseline" if f.baseline == "unchanged" else f"below --fail-on {report.fail_on}"
                   for f in quiet}
            out = ET.SubElement(case, "system-out")
            out.text = "\n\n".join(f"[{why[id(f)]}] {_describe(f)}" for f in quiet)
    if report.status.value == "failed" or report.unexplained_errors():
        tests += 1
        errors += 1
        case = ET.SubElement(suite, "testcase", classname="doctor.collect", name="run target")
        left = report.unexplained_errors()
        first = left[0] if left else None
        el = ET.SubElement(case, "error", type=first.kind if first else "failed",
                           message=first.message if first else "the target could not be run")
        el.text = "\n".join(f"{e.kind}: {e.message}" + (f"\n  {e.hint}" if e.hint else "") for e in report.unexplained_errors())
    for el in (suites, suite):
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("skipped", str(skips))
    suites.set("time", f"{report.duration_s:.2f}")
    return suites


def render_junit(report: Report) -> str:
    tree = junit_tree(report)
    ET.indent(tree)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(tree, encoding="unicode") + "\n"
