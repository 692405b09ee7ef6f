"""The safe `when` language: parsed once with `ast` against a whitelist, evaluated by closures.

Grammar: numbers, strings, True/False/None, metric names (`grad.depth_ratio`), rule params
(`ratio`), arithmetic (+ - * / // % **), comparisons (< <= > >= == != in, not in), `and`, `or`,
`not`, list/tuple literals (after `in`, or as a function's only argument) and the functions in
FUNCTIONS. Nothing else parses: no attribute access beyond dotted metric names, no subscripts,
no keyword arguments, no lambdas, no comprehensions. The user's text is never given to
eval/exec/compile; it is walked node by node into Python closures.

Unmeasured metrics: a lookup raises `Missing`. `and`/`or` use three-valued (Kleene) logic with
Python's short-circuit: `x or y` is true when either is true even if the other was not
measured, `x and y` is false when either is false; otherwise a missing operand makes the
result Missing. Everything else propagates Missing: arithmetic, comparisons (also with None),
function calls. Division (or modulo) by zero, log10 of a non-positive number and overflow
also give Missing (never inf): a ratio with a zero denominator was not meaningfully measured.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import math
import operator
import tokenize
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping, Optional, Union

from doctor.metrics import CATALOGUE

# name -> (min args, max args or None for any number)
FUNCTIONS: dict[str, tuple[int, Optional[int]]] = {
    "abs": (1, 1),
    "all": (1, None),
    "any": (1, None),
    "log10": (1, 1),
    "max": (1, None),
    "mean": (1, None),
    "min": (1, None),
}

MAX_DEPTH = 64
MAX_SOURCE = 4000

Lookup = Callable[[str], Any]
NamesOk = Union[Collection[str], Callable[[str], Union[bool, str]]]


class ExprError(ValueError):
    """A `when` expression that does not parse or uses something outside the language."""

    def __init__(self, message: str, *, line: int = 1, col: int = 0, source: str = ""):
        super().__init__(message)
        self.message = message
        self.line = line  # 1-based line within the expression
        self.col = col  # 0-based character column within that line
        self.source = source

    def __str__(self) -> str:
        where = f"column {self.col + 1}" if self.line == 1 else f"line {self.line}, column {self.col + 1}"
        return f"{self.message} ({where})"


class Missing(Exception):
    """A value the expression needs was not measured (or is not meaningful, e.g. x / 0)."""

    def __init__(self, name: Optional[str], reason: str = "not measured"):
        super().__init__(f"{name}: {reason}" if name else reason)
        self.name = name
        self.reason = reason


class EvalError(Exception):
    """Values of the wrong type met at evaluation (e.g. a metric holding text compared with a number)."""


def _num(v: Any) -> Any:
    if v is None:
        raise Missing(None, "None in arithmetic")
    if not isinstance(v, (int, float)):  # bool is an int
        raise EvalError(f"expected a number, got {type(v).__name__} {v!r}")
    return v


def _pow(a: Any, b: Any) -> float:
    # math.pow works on floats, so `10 ** 10 ** 10` overflows at once instead of building a huge int.
    return math.pow(a, b)


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _pow,
}

_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)

# Friendly names for constructs people try; anything else gets its AST class name.
_REFUSED: dict[type, str] = {
    ast.Lambda: "lambda",
    ast.Subscript: "subscripts (x[...])",
    ast.Slice: "slices",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.IfExp: "conditional expressions (x if c else y); use and/or",
    ast.Starred: "starred arguments (*x)",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


@dataclass(frozen=True)
class Expr:
    """A compiled expression: its source, the metric names and params it reads, and its evaluator."""

    source: str
    names: tuple[str, ...]  # metric names, in order of first appearance
    params: tuple[str, ...]  # rule params it reads
    kind: str  # inferred result type: number, bool, text, none, list or any
    _fn: Callable[["_Env"], Any] = field(repr=False, compare=False)

    def evaluate(self, lookup: Lookup, params: Optional[Mapping[str, Any]] = None) -> Any:
        """The value, reading metrics with `lookup` (which raises Missing) and params from `params`.

        A param absent from `params` is read with `lookup` too. Raises Missing or EvalError.
        """
        return self._fn(_Env(lookup, params or {}))


@dataclass
class _Env:
    lookup: Lookup
    params: Mapping[str, Any]

    def metric(self, name: str) -> Any:
        v = self.lookup(name)
        if v is None:  # a lookup that returns None instead of raising means the same thing
            raise Missing(name)
        return v

    def param(self, name: str) -> Any:
        return self.params[name] if name in self.params else self.metric(name)


def compile_expr(source: str, *, names_ok: NamesOk = CATALOGUE, params: Union[Collection[str], Mapping[str, Any]] = ()) -> Expr:
    """Parse `source` once and check it against the whitelist; raise ExprError with its column.

    `names_ok` says which dotted metric names exist: a collection, or a callable returning True,
    False, or a string that explains why the name is refused here (e.g. wrong scope).
    `params` are the bare names the expression may use; when it is a mapping, its values give
    their types for load-time type checks.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExprError("empty expression", source=str(source))
    if len(source) > MAX_SOURCE:
        raise ExprError(f"expression longer than {MAX_SOURCE} characters", source=source)
    # Parenthesised so a YAML block (`when: |`) may span lines, whatever its indentation;
    # columns on line 1 shift by one (see _unshift).
    wrapped, mangled = _mangle_keywords("(" + source + "\n)")
    try:
        tree = ast.parse(wrapped, mode="eval")
    except SyntaxError as e:
        lines = source.split("\n")
        line, col = _unshift(e.lineno or 1, max((e.offset or 1) - 1, 0))
        if line == 1 and (e.offset or 1) <= 1 and len(lines) == 1:
            # the error blames the parentheses we added ("'(' was never closed"): ask without them
            try:
                ast.parse(_mangle_keywords(source)[0], mode="eval")
            except SyntaxError as e1:
                e, line, col = e1, 1, max((e1.offset or 1) - 1, 0)
        if line > len(lines):  # at the closing parenthesis we added: the expression ended early
            line, col = len(lines), len(lines[-1])
        raise ExprError(f"syntax error: {e.msg}", line=line, col=col, source=source) from None
    c = _Compiler(source, names_ok, params, mangled)
    fn, kind = c.compile(tree.body)
    return Expr(source=source, names=tuple(c.names), params=tuple(c.params), kind=kind, _fn=fn)


def _unshift(line: int, col: int) -> tuple[int, int]:
    """A position in the parenthesised source, as a position in the user's source."""
    return line, (max(col - 1, 0) if line == 1 else col)


def _mangle_keywords(source: str) -> tuple[str, dict[tuple[int, int], str]]:
    """Let dotted names contain Python keywords (`class.count`) by renaming them before parsing.

    A keyword next to a '.' becomes the same-length identifier '_' + kw[1:], so columns stay
    right; the compiler maps it back by position. Identifiers starting with '_' are otherwise
    refused, so a user cannot spell a mangled name.
    """
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source, {}  # the parser will report the error
    lines = source.split("\n")
    mangled: dict[tuple[int, int], str] = {}

    def is_dot(t: Optional[tokenize.TokenInfo]) -> bool:
        return t is not None and t.type == tokenize.OP and t.string == "."

    for i, t in enumerate(toks):
        if t.type != tokenize.NAME or not keyword.iskeyword(t.string):
            continue
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if not (is_dot(prev) or is_dot(nxt)):
            continue
        row, col = t.start
        text = lines[row - 1]
        lines[row - 1] = text[:col] + "_" + t.string[1:] + text[col + len(t.string):]
        mangled[(row, len(text[:col].encode("utf-8")))] = t.string
    return "\n".join(lines), mangled


class _Compiler:
    def __init__(self, source: str, names_ok: NamesOk, params: Any, mangled: dict[tuple[int, int], str]):
        self.source = source
        self.lines = source.split("\n")
        self.names_ok = names_ok
        self.param_kinds: dict[str, str] = (
            {k: _kind_of(v) for k, v in params.items()} if isinstance(params, Mapping) else {p: "any" for p in params}
        )
        self.mangled = mangled
        self.depth = 0
        self.names: dict[str, None] = {}  # ordered set
        self.params: dict[str, None] = {}

    # -- errors ---------------------------------------------------------------------------------

    def error(self, node: ast.AST, message: str) -> ExprError:
        line, byte_col = _unshift(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        col = len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))
        return ExprError(message, line=line, col=col, source=self.source)

    # -- names ----------------------------------------------------------------------------------

    def _part(self, text: str, line: int, byte_col: int, node: ast.AST) -> str:
        original = self.mangled.get((line, byte_col))  # both in the parenthesised source
        if original is not None:
            return original
        if text.startswith("__") and text.endswith("__"):
            raise self.error(node, f"'{text}' is not allowed: dunder names are refused")
        if text.startswith("_"):
            raise self.error(node, f"'{text}' is not allowed: names starting with '_' are refused")
        return text

    def dotted(self, node: ast.AST) -> str:
        parts: list[str] = []
        cur = node
        while isinstance(cur, ast.Attribute):
            end_line = cur.end_lineno or cur.lineno
            end_col = cur.end_col_offset or 0
            parts.append(self._part(cur.attr, end_line, end_col - len(cur.attr.encode("utf-8")), cur))
            cur = cur.value
        if not isinstance(cur, ast.Name):
            raise self.error(node, "attribute access is not allowed (only dotted metric names such as grad.norm)")
        parts.append(self._part(cur.id, cur.lineno, cur.col_offset, cur))
        return ".".join(reversed(parts))

    def _check_name(self, node: ast.AST, name: str) -> Union[bool, str]:
        ok = self.names_ok
        if callable(ok) and not isinstance(ok, Collection):
            return ok(name)
        return name in ok

    def _candidates(self) -> list[str]:
        ok = self.names_ok
        if callable(ok) and not isinstance(ok, Collection):
            return [n for n in CATALOGUE if ok(n) is True]
        return list(ok)

    def name(self, node: ast.AST) -> tuple[Callable[[_Env], Any], str]:
        name = self.dotted(node)
        if "." not in name and name in self.param_kinds:
            self.params[name] = None
            return (lambda env: env.param(name)), self.param_kinds[name]
        if "." not in name and name in FUNCTIONS:
            raise self.error(node, f"'{name}' is a function: call it, e.g. {name}(a, b)")
        verdict = self._check_name(node, name)
        if isinstance(verdict, str):
            raise self.error(node, verdict)
        if not verdict:
            pool = self._candidates() + list(self.param_kinds)
            if name in ("true", "false", "none"):
                pool = [name.capitalize()]
            close = difflib.get_close_matches(name, pool, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            what = "metric" if "." in name else "name"
            extra = "" if "." in name or close else "; a bare name must be a param of the rule"
            raise self.error(node, f"unknown {what} '{name}'{hint}{extra}")
        self.names[name] = None
        d = CATALOGUE.get(name)
        return (lambda env: env.metric(name)), (d.kind.value if d is not None else "any")

    # -- nodes ----------------------------------------------------------------------------------

    def compile(self, node: ast.AST, *, list_ok: bool = False) -> tuple[Callable[[_Env], Any], str]:
        # Nested closures recurse at evaluation; a bounded depth keeps that far from the stack limit.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(node, f"expression nested more than {MAX_DEPTH} levels deep")
        try:
            return self._compile(node, list_ok)
        finally:
            self.depth -= 1

    def _compile(self, node: ast.AST, list_ok: bool) -> tuple[Callable[[_Env], Any], str]:
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) not in (int, float, str, bool, type(None)):
                raise self.error(node, f"constant {v!r} is not allowed (numbers, strings, True, False, None only)")
            return (lambda env: v), _kind_of(v)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self.name(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unaryop(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            if not list_ok:
                raise self.error(node, "list literals are only allowed after `in` or as a function's argument")
            items = [self.compile(e)[0] for e in node.elts]
            return (lambda env: tuple(f(env) for f in items)), "list"
        what = _REFUSED.get(type(node), f"'{type(node).__name__}' expressions")
        raise self.error(node, f"not allowed in a rule expression: {what}")

    def boolop(self, node: ast.BoolOp) -> tuple[Callable[[_Env], Any], str]:
        fns = [self.compile(v) for v in node.values]
        kind = "bool" if all(k == "bool" for _, k in fns) else "any"
        return _kleene([f for f, _ in fns], is_and=isinstance(node.op, ast.And)), kind

    def unaryop(self, node: ast.UnaryOp) -> tuple[Callable[[_Env], Any], str]:
        f, kind = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return (lambda env: not f(env)), "bool"
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            self.need_number(node.operand, kind)
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return (lambda env: sign * _num(f(env))), "number"
        raise self.error(node, f"operator {type(node.op).__name__} is not allowed")

    def binop(self, node: ast.BinOp) -> tuple[Callable[[_Env], Any], str]:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not allowed (+ - * / // % ** only)")
        lf, lk = self.compile(node.left)
        rf, rk = self.compile(node.right)
        self.need_number(node.left, lk)
        self.need_number(node.right, rk)

        def run(env: _Env) -> Any:
            a, b = _num(lf(env)), _num(rf(env))
            try:
                return op(a, b)
            except ZeroDivisionError:
                raise Missing(None, "division by zero") from None
            except (OverflowError, ValueError) as e:
                raise Missing(None, f"arithmetic error: {e}") from None

        return run, "number"

    def compare(self, node: ast.Compare) -> tuple[Callable[[_Env], Any], str]:
        left = self.compile(node.left)
        steps = []
        prev_kind = left[1]
        for op, comp in zip(node.ops, node.comparators):
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise self.error(node, f"comparison '{type(op).__name__}' is not allowed (use == and != rather than is)")
            is_in = isinstance(op, (ast.In, ast.NotIn))
            rf, rk = self.compile(comp, list_ok=is_in)
            if isinstance(op, _ORDERING) and {prev_kind, rk} == {"text", "number"}:
                raise self.error(comp, "cannot order text against a number")
            steps.append((fn, rf, op))
            prev_kind = rk
        lf = left[0]

        def run(env: _Env) -> bool:
            a = lf(env)
            for fn, rf, op in steps:
                b = rf(env)
                if a is None or b is None:
                    raise Missing(None, "comparison with None")
                try:
                    ok = fn(a, b)
                except TypeError as e:
                    raise EvalError(f"cannot compare {a!r} with {b!r}: {e}") from None
                if not ok:
                    return False
                a = b
            return True

        return run, "bool"

    def call(self, node: ast.Call) -> tuple[Callable[[_Env], Any], str]:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "only the functions " + ", ".join(sorted(FUNCTIONS)) + " may be called, by bare name")
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.error(node, f"function '{name}' is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise self.error(node, f"keyword arguments are not allowed in {name}()")
        args = list(node.args)
        if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
            args = list(args[0].elts)  # max([a, b]) is max(a, b)
        lo, hi = FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise self.error(node, f"{name}() takes {want} argument{'s' if lo != 1 or hi != 1 else ''}, got {len(args)}")
        compiled = [self.compile(a) for a in args]
        fns = [f for f, _ in compiled]
        if name in ("any", "all"):
            return _kleene(fns, is_and=(name == "all"), as_bool=True), "bool"
        for a, (_, k) in zip(args, compiled):
            self.need_number(a, k)
        impl = _FUNC_IMPL[name]

        def run(env: _Env) -> Any:
            values = [_num(f(env)) for f in fns]
            try:
                return impl(values)
            except (ValueError, OverflowError) as e:
                raise Missing(None, f"{name}(): {e}") from None

        return run, "number"

    def need_number(self, node: ast.AST, kind: str) -> None:
        if kind in ("text", "none", "list"):
            raise self.error(node, f"arithmetic needs numbers, but this is {kind}")


_FUNC_IMPL: dict[str, Callable[[list], Any]] = {
    "abs": lambda v: abs(v[0]),
    "log10": lambda v: math.log10(v[0]),
    "max": max,
    "min": min,
    "mean": lambda v: math.fsum(v) / len(v),
}


def _kleene(fns: list[Callable[[_Env], Any]], *, is_and: bool, as_bool: bool = False) -> Callable[[_Env], Any]:
    """`and`/`or` over operands evaluated left to right, short-circuiting, Missing only if decisive."""

    def run(env: _Env) -> Any:
        missing: Optional[Missing] = None
        value: Any = True if is_and else False
        for f in fns:
            try:
                value = f(env)
            except Missing as m:
                missing = missing or m
                continue
            if bool(value) != is_and:  # a false operand of `and`, a true one of `or`: decided
                return bool(value) if as_bool else value
        if missing is not None:
            raise missing
        return bool(value) if as_bool else value

    return run


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "text"
    if v is None:
        return "none"
    return "any"
