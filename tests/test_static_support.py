"""Support for the static tests (no tests here): in-process static analysis of a target, as `--static` runs it."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Optional

import torch

from doctor.collect.budget import BUDGETS
from doctor.collect.context import prepare
from doctor.collect.probes import static_facts
from doctor.collect.static.analysis import PartialContext
from doctor.collect.target import load_target
from doctor.engine import judge, load_rules
from doctor.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
STRUCTURE_RULES = {p.stem for p in (ROOT / "rules" / "structure").glob("*.yaml")}
_RULES: list = []


def rules() -> list:
    if not _RULES:
        _RULES.extend(load_rules())
    return _RULES


def static_metrics(path: Path, factory: Optional[str] = None) -> Metrics:
    """Load the target and run the static probe on one batch, as the worker does under --static."""
    metrics = Metrics(target=str(path))
    setup = load_target(str(path), factory, device="cpu", seed=0)
    setup.val_data = None
    budget = dataclasses.replace(BUDGETS["quick"], train_steps=1, eval_batches=0)
    try:
        ctx = prepare(setup, metrics, budget, torch.device("cpu"), 0)
    except Exception:  # noqa: BLE001 - as the worker does: static checks still run on what loaded
        ctx = PartialContext(setup, metrics, torch.device("cpu"))
    static_facts.run(ctx)
    return metrics


def findings(metrics: Metrics, *, gating: bool = True):
    out = judge(rules(), metrics).findings
    return [f for f in out if not gating or f.severity.value in ("error", "warning")]


def header(path: Path) -> tuple[set[str], set[str]]:
    """(`expect:` rules, `info:` rules) from a fixture's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    m = re.search(r"^expect:\s*(.+)$", doc, re.M)
    expected = {r.strip() for r in m.group(1).split(",")} - {"clean"} if m else set()
    i = re.search(r"^info:\s*(.+)$", doc, re.M)
    info = {r.strip() for r in i.group(1).split(",")} if i else set()
    return expected, info
