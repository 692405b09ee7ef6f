"""Load YAML rule files into validated, compiled Rules; every error says file:line: what."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

import yaml
from pydantic import ValidationError

from doctor.collect.fixes import FIX_KINDS
from doctor.engine.expr import Expr, ExprError, compile_expr
from doctor.engine.schema import CauseSpec, CheckSpec, DocSpec, RuleSpec, suggest
from doctor.engine.template import RESERVED, Template, TemplateError, parse_template, spec_ok
from doctor.metrics import CATALOGUE, MetricKind
from doctor.report import Severity
from doctor.resources import rules_dir


class RuleError(Exception):
    """A rule file (or a rule override) that cannot be used. str() is `file:line: message`.

    Loading collects every error it can before raising; the raised error is the first, and
    `.errors` holds all of them (itself included), so a CLI can print them all at once.
    """

    def __init__(self, file: Union[str, Path, None], line: Optional[int], message: str):
        super().__init__(message)
        self.file = str(file) if file is not None else None
        self.line = line
        self.message = message
        self.errors: list[RuleError] = [self]

    def one_line(self) -> str:
        where = self.file or ""
        if self.file and self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message

    def __str__(self) -> str:
        return "\n".join(e.one_line() for e in self.errors)

    @classmethod
    def many(cls, errors: list["RuleError"]) -> "RuleError":
        errors = sorted(errors, key=lambda e: (e.file or "", e.line or 0))
        first = errors[0]
        first.errors = errors
        return first


@dataclass(frozen=True)
class Cause:
    id: str
    text: str
    fixes: tuple[str, ...]
    when: Optional[Expr]
    apply: Optional[str] = None  # a fix kind --verify-fixes can apply


@dataclass(frozen=True)
class Check:
    """A compiled `confirmed_by` or `contradicted_by`: its condition and optional note template."""

    when: Expr
    note: Optional[Template]


@dataclass(frozen=True, eq=False)
class Rule:
    """A validated rule: its spec, compiled expressions, effective params and severity, and file."""

    spec: RuleSpec
    source: Path
    severity: Severity  # the spec's, or its override
    params: Mapping[str, Any]  # the spec's, with overrides applied
    when: Expr
    causes: tuple[Cause, ...]
    message: Template
    lines: Mapping[tuple[str, ...], int] = field(repr=False)  # key path -> line in `source`
    confirmed_by: Optional[Check] = None
    contradicted_by: Optional[Check] = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def symptom(self) -> str:
        return self.spec.symptom

    @property
    def scope(self) -> str:
        return self.spec.scope

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def doc(self) -> DocSpec:
        return self.spec.doc

    @property
    def location(self) -> Optional[str]:
        return self.spec.location

    def line_of(self, *path: Any) -> Optional[int]:
        return _line_for(self.lines, path)


# -- YAML with lines ---------------------------------------------------------------------------


# libyaml's parser when PyYAML was built with it: ~10x faster on the ~65 bundled rules, which every
# run loads before anything else (a second of a pre-commit hook's budget with the pure-Python one).
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """SafeLoader that also reads `1e-3` as a float (YAML 1.1 wants `1.0e-3`): thresholds look like that."""


# Copy the resolver lists before changing them: add_implicit_resolver would append to lists
# shared with SafeLoader and change YAML parsing for everyone in the process.
_Loader.yaml_implicit_resolvers = {
    ch: [r for r in rs if r[0] != "tag:yaml.org,2002:float"] for ch, rs in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], int], dict[tuple[str, ...], yaml.Node], list[RuleError]]:
    """The document, the line of every key path, the value node of every key path, duplicate-key errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(path, None, f"cannot read rule file: {e}") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RuleError(path, 1, "empty rule file")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        context = f" ({e.context})" if e.context and e.problem else ""
        raise RuleError(path, mark.line + 1 if mark else None, f"YAML syntax error: {problem}{context}") from None
    except yaml.YAMLError as e:
        raise RuleError(path, None, f"YAML error: {e}") from None
    finally:
        loader.dispose()
    lines: dict[tuple[str, ...], int] = {(): node.start_mark.line + 1}
    nodes: dict[tuple[str, ...], yaml.Node] = {(): node}
    dups: list[RuleError] = []
    _index(node, (), lines, nodes, dups, path)
    return data, lines, nodes, dups


def _index(node: yaml.Node, path: tuple[str, ...], lines: dict, nodes: dict, dups: list, file: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            key = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
            if key in seen:  # PyYAML silently keeps the last; a rule author meant one of them
                dups.append(RuleError(file, k.start_mark.line + 1, f"duplicate key '{_dotted(path + (key,))}'"))
            seen.add(key)
            lines[path + (key,)] = k.start_mark.line + 1
            nodes[path + (key,)] = v
            _index(v, path + (key,), lines, nodes, dups, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (str(i),)] = item.start_mark.line + 1
            nodes[path + (str(i),)] = item
            _index(item, path + (str(i),), lines, nodes, dups, file)


def _line_for(lines: Mapping[tuple[str, ...], int], loc: Iterable[Any]) -> Optional[int]:
    p = tuple(str(x) for x in loc if x != "[key]")
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)


def _dotted(loc: Iterable[Any]) -> str:
    out = ""
    for x in loc:
        if x == "[key]":
            continue
        if isinstance(x, int) or (isinstance(x, str) and x.isdigit()):
            out += f"[{x}]"
        else:
            out += ("." if out else "") + str(x)
    return out


# -- schema errors -----------------------------------------------------------------------------


def _model_at(loc: tuple) -> Optional[type]:
    if not loc:
        return RuleSpec
    if loc[0] == "doc" and len(loc) == 1:
        return DocSpec
    if loc[0] == "causes" and len(loc) == 2:
        return CauseSpec
    if loc[0] in ("confirmed_by", "contradicted_by") and len(loc) == 1:
        return CheckSpec
    return None


def _schema_errors(e: ValidationError, lines: Mapping, path: Path) -> list[RuleError]:
    out: list[RuleError] = []
    seen: set[tuple] = set()
    for err in e.errors():
        loc = tuple(err["loc"])
        parent, where = loc[:-1], _dotted(loc)
        typ = err["type"]
        if typ == "missing":
            msg = f"missing required key '{loc[-1]}'" + (f" in {_dotted(parent)}" if parent else "")
        elif typ == "extra_forbidden":
            model = _model_at(parent)
            allowed = list(model.model_fields) if model else []
            msg = f"unknown key '{loc[-1]}'" + (f" in {_dotted(parent)}" if parent else "") + suggest(loc[-1], allowed)
            if allowed:
                msg += f"; allowed keys: {', '.join(allowed)}"
        else:
            text = err["msg"].removeprefix("Value error, ")
            if typ == "string_too_short":
                text = "must not be empty"
            elif typ == "too_short":
                text = "must have at least one item"
            elif typ in ("literal_error", "string_type", "list_type", "dict_type"):
                text = f"{text[0].lower()}{text[1:]} (got {err.get('input')!r})"
            msg = f"{where}: {text}" if where else text
        key = (loc, msg)
        if key not in seen:
            seen.add(key)
            out.append(RuleError(path, _line_for(lines, loc), msg))
    return out


# -- one file ----------------------------------------------------------------------------------


def _names_ok(scope: str):
    """Catalogue names a rule of this scope may read: model-wide ones, plus its own scope's."""

    def ok(name: str) -> Union[bool, str]:
        d = CATALOGUE.get(name)
        if d is None:
            return False
        if d.scope in ("model", scope):
            return True
        return f"metric '{name}' is per-{d.scope}: it can only be used by a rule with scope: {d.scope}"

    return ok


def _expr_line(lines: Mapping, nodes: Mapping, path: tuple[str, ...], err: ExprError) -> Optional[int]:
    node = nodes.get(path)
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        # a literal block keeps its lines: the content starts on the line after the `|`
        return node.start_mark.line + 1 + err.line
    return lines.get(path)


def load_rule_file(path: Union[str, Path]) -> Rule:
    """Load one rule file; raise RuleError (with every error found in the file) if it is not valid."""
    path = Path(path)
    data, lines, nodes, errors = _read_yaml(path)
    if not isinstance(data, dict):
        raise RuleError(path, 1, f"a rule file must be a mapping of keys (id, symptom, when, ...), got {type(data).__name__}")
    try:
        spec = RuleSpec.model_validate(data)
    except ValidationError as e:
        raise RuleError.many(errors + _schema_errors(e, lines, path)) from None

    def err(key_path: tuple, message: str, line: Optional[int] = None) -> None:
        errors.append(RuleError(path, line or _line_for(lines, key_path), message))

    if spec.id != path.stem:
        err(("id",), f"id '{spec.id}' must equal the file name '{path.stem}' (rename the file or the id)")

    names_ok = _names_ok(spec.scope)

    def compile_at(key_path: tuple, source: str, what: str) -> Optional[Expr]:
        try:
            return compile_expr(source, names_ok=names_ok, params=spec.params)
        except ExprError as e:
            err(key_path, f"{what}: {e}", _expr_line(lines, nodes, key_path, e))
            return None

    when = compile_at(("when",), spec.when, "when")
    if when is not None:
        if when.kind in ("text", "none", "list"):
            err(("when",), f"when: must be a condition, but it gives {when.kind}")
        if spec.scope != "model" and not any(CATALOGUE[n].scope == spec.scope for n in when.names if n in CATALOGUE):
            scoped = sorted(n for n, d in CATALOGUE.items() if d.scope == spec.scope)
            err(("scope",), f"scope: {spec.scope}, but `when` reads no per-{spec.scope} metric ({', '.join(scoped)})")

    causes: list[Cause] = []
    cause_ids: set[str] = set()
    for i, c in enumerate(spec.causes):
        if c.id in cause_ids:
            err(("causes", i, "id"), f"causes[{i}].id: duplicate cause id '{c.id}'")
        cause_ids.add(c.id)
        expr = compile_at(("causes", i, "when"), c.when, f"causes[{i}].when") if c.when is not None else None
        _check_split_fixes(nodes.get(("causes", str(i), "fixes")), i, path, errors)
        if c.apply is not None and c.apply not in FIX_KINDS:
            err(("causes", i, "apply"), f"causes[{i}].apply: unknown fix kind '{c.apply}'"
                + (suggest(c.apply, FIX_KINDS) or f"; known: {', '.join(sorted(FIX_KINDS))}"))
        causes.append(Cause(id=c.id, text=c.text, fixes=tuple(c.fixes), when=expr, apply=c.apply))

    def template_at(key_path: tuple, text: str, what: str) -> Optional[Template]:
        try:
            parsed = parse_template(text)
        except TemplateError as e:
            err(key_path, f"{what}: {e}")
            return None
        for problem in _template_problems(parsed, spec, names_ok):
            err(key_path, f"{what}: {problem}")
        return parsed

    template = template_at(("message",), spec.message, "message")

    checks: dict[str, Optional[Check]] = {}
    for key in ("confirmed_by", "contradicted_by"):
        c: Optional[CheckSpec] = getattr(spec, key)
        if c is None:
            checks[key] = None
            continue
        expr = compile_at((key, "when"), c.when, f"{key}.when")
        if expr is not None and expr.kind in ("text", "none", "list"):
            err((key, "when"), f"{key}.when: must be a condition, but it gives {expr.kind}")
        note = template_at((key, "note"), c.note, f"{key}.note") if c.note is not None else None
        checks[key] = Check(when=expr, note=note) if expr is not None else None

    if spec.location is not None:
        d = CATALOGUE.get(spec.location)
        verdict = names_ok(spec.location)
        if d is None:
            err(("location",), f"location: unknown metric '{spec.location}'"
                               f"{suggest(spec.location, [n for n, m in CATALOGUE.items() if m.kind == MetricKind.text])}")
        elif isinstance(verdict, str):
            err(("location",), f"location: {verdict}")
        elif d.kind != MetricKind.text:
            err(("location",), f"location: '{spec.location}' holds a {d.kind.value}; it must be a text metric naming "
                               "a module path or call (such as static.output_op_at)")

    if errors or when is None or template is None:
        raise RuleError.many(errors)
    return Rule(
        spec=spec, source=path, severity=Severity(spec.severity), params=dict(spec.params),
        when=when, causes=tuple(causes), message=template, lines=lines,
        confirmed_by=checks["confirmed_by"], contradicted_by=checks["contradicted_by"],
    )


def _check_split_fixes(node: Optional[yaml.Node], i: int, path: Path, errors: list[RuleError]) -> None:
    """Catch `fixes: [Use ReLU or GELU, with He init.]`: YAML splits a flow list at every comma."""
    if not isinstance(node, yaml.SequenceNode) or not node.flow_style:
        return
    for j, item in enumerate(node.value[1:], start=1):
        if isinstance(item, yaml.ScalarNode) and not item.style and item.value[:1].islower():  # plain: None or ""
            errors.append(RuleError(path, item.start_mark.line + 1, (
                f"causes[{i}].fixes[{j}] '{item.value}' looks like the rest of the previous fix, split at a comma "
                "inside [...]; quote each fix or write the list one '- ' item per line")))


_SAMPLES = {
    MetricKind.number: [1.5, 1],
    MetricKind.bool: [True],
    MetricKind.text: ["text"],
}


def _template_problems(template: Template, spec: RuleSpec, names_ok) -> list[str]:
    problems = []
    reserved = RESERVED[spec.scope]
    for name, fmt in template.placeholders:
        if name in spec.params:
            samples = [spec.params[name]]
        elif name in reserved:
            samples = ["text"]
        else:
            verdict = names_ok(name)
            if isinstance(verdict, str):
                problems.append(f"placeholder {{{name}}}: {verdict}")
                continue
            if not verdict:
                pool = list(spec.params) + sorted(reserved) + [n for n in CATALOGUE if names_ok(n) is True]
                problems.append(
                    f"unknown placeholder {{{name}}}{suggest(name, pool)}; use a metric, a param, or one of: {', '.join(sorted(reserved))}"
                )
                continue
            samples = _SAMPLES[CATALOGUE[name].kind]
        if fmt and not spec_ok(fmt, samples):
            problems.append(f"invalid format spec ':{fmt}' in {{{name}:{fmt}}} for a value like {samples[0]!r}")
    return problems


# -- all rules ---------------------------------------------------------------------------------


def _rule_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise RuleError(root, None, "rule directory not found")
    return sorted(root.rglob("*.yaml"))


def load_rules(
    extra_dirs: Iterable[Union[str, Path]] = (),
    *,
    builtin: bool = True,
    params_overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
    severity_overrides: Optional[Mapping[str, str]] = None,
) -> list[Rule]:
    """Load the built-in rules (unless builtin=False) and those under `extra_dirs`, sorted by id.

    `params_overrides` maps rule id -> {param: value}; `severity_overrides` maps rule id ->
    error|warning|info. Overrides naming an unknown rule or param are errors, as is a value of
    the wrong type. Raises RuleError listing every problem found.
    """
    if isinstance(extra_dirs, (str, Path)):  # a lone path, not a list of its characters
        extra_dirs = [extra_dirs]
    roots = ([rules_dir()] if builtin else []) + [Path(d) for d in extra_dirs]
    errors: list[RuleError] = []
    by_id: dict[str, Rule] = {}
    for root in roots:
        try:
            files = _rule_files(root)
        except RuleError as e:
            errors.append(e)
            continue
        for f in files:
            try:
                rule = load_rule_file(f)
            except RuleError as e:
                errors.extend(e.errors)
                continue
            other = by_id.get(rule.id)
            if other is not None:
                errors.append(RuleError(f, rule.line_of("id"), f"duplicate rule id '{rule.id}' (also in {other.source}:{other.line_of('id')})"))
                continue
            by_id[rule.id] = rule
    for rule in by_id.values():
        for i, other_id in enumerate(rule.spec.explains):
            if other_id not in by_id or other_id == rule.id:
                what = "itself" if other_id == rule.id else f"unknown rule '{other_id}'{suggest(other_id, by_id)}"
                errors.append(RuleError(rule.source, rule.line_of("explains", i) or rule.line_of("explains"),
                                        f"explains: {what}"))
    if not errors:
        _apply_overrides(by_id, params_overrides or {}, severity_overrides or {}, errors)
    if errors:
        raise RuleError.many(errors)
    return [by_id[k] for k in sorted(by_id)]


def _apply_overrides(by_id: dict[str, Rule], params: Mapping, severities: Mapping, errors: list[RuleError]) -> None:
    for rid in list(params) + list(severities):
        if rid not in by_id:
            errors.append(RuleError(None, None, f"override for unknown rule '{rid}'{suggest(rid, by_id)}"))
    for rid, over in params.items():
        rule = by_id.get(rid)
        if rule is None:
            continue
        new = dict(rule.params)
        for name, value in (over or {}).items():
            if name not in rule.params:
                have = ", ".join(rule.params) or "none"
                errors.append(RuleError(rule.source, rule.line_of("params") or rule.line_of("id"),
                                        f"override of unknown param '{name}' of rule '{rid}'{suggest(name, rule.params)}; its params: {have}"))
                continue
            try:
                new[name] = _coerce(value, rule.params[name])
            except ValueError as e:
                errors.append(RuleError(rule.source, rule.line_of("params", name), f"override of param '{name}' of rule '{rid}': {e}"))
        by_id[rid] = replace(rule, params=new)
    for rid, sev in severities.items():
        rule = by_id.get(rid)
        if rule is None:
            continue
        try:
            by_id[rid] = replace(rule, severity=Severity(str(getattr(sev, "value", sev)).lower()))
        except ValueError:
            errors.append(RuleError(rule.source, rule.line_of("severity"), f"severity override for rule '{rid}' must be error, warning or info, got {sev!r}"))


def _coerce(value: Any, default: Any) -> Any:
    """An override converted to the type of the param's default (configs and CLIs give strings)."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, (int, float)):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            try:
                return float(value) if any(c in value for c in ".eEn") else int(value)
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {value!r}")
