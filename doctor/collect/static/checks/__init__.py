"""The static checks: each module's `check(analysis, facts)` writes catalogue metrics (doctor/catalogue/static.py).

A check asks the Analysis only for the sources it needs (tree, graph, loss, optimizer, source);
a check whose source is unavailable writes nothing, so its rules are skipped with the reason.
"""

from __future__ import annotations

from doctor.collect.static.analysis import Analysis
from doctor.collect.static.checks import graph, loss, optim, source, tree
from doctor.collect.static.facts import Facts

CHECKS = (tree.check, graph.check, loss.check, optim.check, source.check)


def run_checks(analysis: Analysis) -> Facts:
    facts = Facts(root=type(analysis.model).__name__)
    for check in CHECKS:
        check(analysis, facts)
    return facts
