"""`doctor explain RULE`: one rule's documentation as plain text."""

from __future__ import annotations

import textwrap

from doctor.engine.loader import Rule
from doctor.engine.template import compact
from doctor.metrics import CATALOGUE


WIDTH = 88


def _block(title: str, text: str, *, prose: bool = False) -> list[str]:
    if prose:  # re-wrap paragraphs; examples are code and keep their lines
        paras = [p for p in text.strip().split("\n\n") if p.strip()]
        text = "\n\n".join(textwrap.fill(" ".join(p.split()), WIDTH - 4) for p in paras)
    return [title, textwrap.indent(text.rstrip(), "    "), ""]


def explain(rule: Rule) -> str:
    """The rule's title, what it checks and why, an example and the fix, its condition and causes."""
    head = f"{rule.id}: {rule.title}"
    out = [head, "=" * len(head), ""]
    out.append(f"symptom {rule.symptom} · severity {rule.severity.value} · scope {rule.scope}")
    out.append("")
    doc = rule.doc
    out += _block("What it checks", doc.what, prose=True)
    out += _block("Why it matters", doc.why, prose=True)
    out += _block("Example that triggers it", doc.example)
    out += _block("Instead", doc.instead)
    out += _block("Fires when", rule.when.source)
    if rule.confirmed_by is not None:
        out += _block("Confirmed when (confidence high; medium when unmeasured)", rule.confirmed_by.when.source)
    if rule.contradicted_by is not None:
        out += _block("Contradicted when (lowered to info)", rule.contradicted_by.when.source)
    if rule.location:
        out.append(f"Located at the subject in {rule.location}")
        out.append("")
    if rule.params:
        out.append("Parameters (override in configuration)")
        out += [f"    {k} = {compact(v)}" for k, v in rule.params.items()]
        out.append("")
    read = list(dict.fromkeys(rule.when.names + tuple(n for c in (rule.confirmed_by, rule.contradicted_by)
                                                       if c is not None for n in c.when.names)))
    if read:
        out.append("Measurements it reads")
        for name in read:
            d = CATALOGUE.get(name)
            out.append(f"    {name} ({d.probe}): {d.doc}" if d else f"    {name}")
        out.append("")
    if rule.causes:
        out.append("Likely causes")
        for c in rule.causes:
            out += textwrap.wrap(f"- {c.id}: {c.text}", WIDTH, initial_indent="  ", subsequent_indent="    ")
            if c.when:
                out.append(f"      likely when: {c.when.source}")
            out += [f"      fix: {f}" for f in c.fixes]
        out.append("")
    if rule.spec.references:
        out.append("References")
        out += [f"  - {r}" for r in rule.spec.references]
        out.append("")
    out.append(f"Defined in {rule.source}")
    return "\n".join(out)
