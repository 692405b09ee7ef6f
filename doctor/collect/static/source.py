"""Facts from the target file's source (its AST): calls and assignments a trace cannot see.

Functional dropout left on in eval, a custom train_step without zero_grad, gradient clipping after
the optimizer step, learning-rate schedulers built with literal arguments, and the line of each
`self.name = ...` assignment (to point at layers kept in a plain list).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Optional

from doctor.collect.static.sites import fmt_site

_DROPOUTS = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"})
_CLIPS = frozenset({"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm"})
STEPS_SIMULATED = 30  # scheduler steps over which the learning-rate factor is computed


class SourceUnavailable(Exception):
    """The target's source cannot be read or parsed; the message says why."""


@dataclass
class Finding:
    what: str  # how a report names it, e.g. "F.dropout in Net.forward"
    site: str  # file:line
    detail: str = ""


@dataclass
class SourceFacts:
    path: str
    always_on_dropout: list[Finding] = field(default_factory=list)
    train_step: Optional[Finding] = None  # the def, when the file has one
    train_step_zero_grad: bool = True
    clip_after_step: list[Finding] = field(default_factory=list)
    schedulers: list[tuple[Finding, float]] = field(default_factory=list)  # (where, lr factor after N steps)
    attribute_lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (class, attr) -> line
    optimizer: Optional[Finding] = None  # the optimizer construction in optimizer()/build_optimizer()


def _name(node: ast.AST) -> str:
    """The last name of a call target: F.dropout -> dropout, torch.nn.utils.clip_grad_norm_ -> clip_grad_norm_."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_functional(call: ast.Call, functional_names: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        base = _dotted(func.value)
        return base in ("F", "functional", "nn.functional", "torch.nn.functional") or base.endswith(".functional")
    return isinstance(func, ast.Name) and func.id in functional_names


def _calls(node: ast.AST) -> list[ast.Call]:
    return sorted((n for n in ast.walk(node) if isinstance(n, ast.Call)), key=lambda c: (c.lineno, c.col_offset))


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def _scheduler_factor(name: str, call: ast.Call) -> Optional[float]:
    """The learning-rate factor after STEPS_SIMULATED steps, for schedulers with literal arguments."""
    kw = {k.arg: _literal(k.value) for k in call.keywords if k.arg}
    pos = [_literal(a) for a in call.args[1:]]  # args[0] is the optimizer
    n = STEPS_SIMULATED
    if name == "StepLR":
        step, gamma = kw.get("step_size", pos[0] if pos else None), kw.get("gamma", pos[1] if len(pos) > 1 else 0.1)
        if isinstance(step, int) and step > 0 and isinstance(gamma, (int, float)):
            return float(gamma) ** (n // step)
    elif name == "MultiStepLR":
        stones, gamma = kw.get("milestones", pos[0] if pos else None), kw.get("gamma", pos[1] if len(pos) > 1 else 0.1)
        if isinstance(stones, (list, tuple)) and all(isinstance(m, int) for m in stones) and isinstance(gamma, (int, float)):
            return float(gamma) ** sum(1 for m in stones if m <= n)
    elif name == "ExponentialLR":
        gamma = kw.get("gamma", pos[0] if pos else None)
        if isinstance(gamma, (int, float)):
            return float(gamma) ** n
    return None


def _own_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _reachable_calls(fn: ast.FunctionDef, functions: dict[str, ast.FunctionDef], depth: int = 2) -> list[ast.Call]:
    """Calls in `fn` and in the file's own functions it calls, `depth` levels down."""
    out = _calls(fn)
    if depth:
        for c in list(out):
            if isinstance(c.func, ast.Name) and c.func.id in functions and functions[c.func.id] is not fn:
                out += _reachable_calls(functions[c.func.id], functions, depth - 1)
    return out


def _bodies(tree: ast.Module) -> list[ast.AST]:
    """Function bodies and loop bodies: the units inside which statement order means execution order."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.For, ast.While))]


def analyse_source(path: str, text: str) -> SourceFacts:
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise SourceUnavailable(f"it does not parse ({exc.msg}, line {exc.lineno})") from exc
    facts = SourceFacts(path=path)
    functional_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                        and (n.module or "").endswith("functional") for a in n.names}

    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            if fn.name == "__init__":
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Assign, ast.AnnAssign)):
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        for t in targets:
                            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                                facts.attribute_lines.setdefault((cls.name, t.attr), node.lineno)
            if fn.name == "forward":
                for call in _calls(fn):
                    if _name(call.func) in _DROPOUTS and _is_functional(call, functional_names):
                        training = next((k.value for k in call.keywords if k.arg == "training"), None)
                        if training is None and len(call.args) >= 3:
                            training = call.args[2]
                        if training is None or (isinstance(training, ast.Constant) and training.value is True):
                            facts.always_on_dropout.append(Finding(
                                what=f"{ast.unparse(call.func)} in {cls.name}.forward",
                                site=fmt_site(path, call.lineno)))

    functions = _own_functions(tree)
    step_fn = functions.get("train_step")
    if step_fn is not None:
        facts.train_step = Finding(what="train_step", site=fmt_site(path, step_fn.lineno))
        calls = _reachable_calls(step_fn, functions)
        zeroes = any(_name(c.func) == "zero_grad" for c in calls) or any(
            isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "grad" for t in n.targets)
            for n in ast.walk(step_fn))
        facts.train_step_zero_grad = zeroes

    factory = functions.get("optimizer") or functions.get("build_optimizer")
    if factory is not None:
        call = next((c for c in _calls(factory) if any(k.arg == "lr" for k in c.keywords)), None)
        facts.optimizer = Finding(what=f"{factory.name}()", site=fmt_site(path, call.lineno if call else factory.lineno))

    seen_clips: set[int] = set()
    for body in _bodies(tree):
        step_line = None
        for call in _calls(body):
            name = _name(call.func)
            receiver = _dotted(call.func.value).lower() if isinstance(call.func, ast.Attribute) else ""
            if name == "step" and "sched" not in receiver and "lr" not in receiver.split(".")[-1:]:
                step_line = step_line or call.lineno
            elif name == "backward" and step_line is not None and call.lineno > step_line:
                step_line = None  # a new step's gradients: clipping them now is in time
            elif name in _CLIPS and step_line is not None and call.lineno > step_line and call.lineno not in seen_clips:
                seen_clips.add(call.lineno)
                facts.clip_after_step.append(Finding(what=f"{name} after the optimizer step",
                                                     site=fmt_site(path, call.lineno)))

    for call in _calls(tree):
        name = _name(call.func)
        if name in ("StepLR", "MultiStepLR", "ExponentialLR"):
            factor = _scheduler_factor(name, call)
            if factor is not None and math.isfinite(factor):
                text = ast.get_source_segment(text, call) or name
                facts.schedulers.append((Finding(what=name, site=fmt_site(path, call.lineno),
                                                 detail=" ".join(text.split())), factor))
    return facts


def read_source(path: str) -> SourceFacts:
    """Parse the target file; SourceUnavailable says why when it cannot be read (a .pyc, an unreadable file)."""
    if not path.endswith(".py"):
        raise SourceUnavailable(f"{path} is not a Python source file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceUnavailable(f"it cannot be read ({exc})") from exc
    return analyse_source(path, text)
