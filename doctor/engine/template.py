"""Message templates: `{name}` and `{name:spec}` placeholders filled from metrics, params and context.

Placeholders name a catalogue metric (dotted names are plain names here, not str.format
attribute access), a rule param, or a reserved context name (RESERVED). `{{` and `}}` are
literal braces. Values are formatted with the spec when one is given; without one, floats get
three significant digits and booleans read as true/false. A value that was not measured
renders as "n/a".
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Any, Callable, Optional

from doctor.engine.expr import Missing

# Context names a message may use besides metrics and params, by rule scope.
RESERVED: dict[str, frozenset[str]] = {
    "model": frozenset({"rule"}),
    "layer": frozenset({"rule", "layer", "layer_type"}),  # layer name; its module class
    "class": frozenset({"rule", "label"}),  # the class label
}
RESERVED_NAMES: frozenset[str] = frozenset().union(*RESERVED.values())

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
NOT_MEASURED = "n/a"


class TemplateError(ValueError):
    """A message template that does not parse."""


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[tuple[str, Optional[str], Optional[str]], ...]  # (literal, name, spec)

    @property
    def placeholders(self) -> list[tuple[str, Optional[str]]]:
        return [(n, s) for _, n, s in self.parts if n is not None]

    def render(self, get: Callable[[str], Any]) -> str:
        """Fill placeholders with `get(name)`; a Missing (or None) value renders as n/a."""
        out = []
        unitless = False
        for literal, name, spec in self.parts:
            # "{ratio:.3g}x" with no ratio reads "n/a", not "n/ax": a unit glued to a missing (or NaN) value goes.
            if unitless and literal[:1] == "x" and not literal[1:2].isalnum():
                literal = literal[1:]
            out.append(literal)
            if name is None:
                continue
            try:
                value = get(name)
            except Missing:
                value = None
            shown = format_value(value, spec)
            unitless = shown in (NOT_MEASURED, "nan", "inf", "-inf")
            out.append(shown)
        return "".join(out)


def parse_template(text: str) -> Template:
    """Split a template into literal text and placeholders, refusing what render would not honour."""
    try:
        raw = list(string.Formatter().parse(text))
    except ValueError as e:
        raise TemplateError(f"{e} (write {{{{ and }}}} for literal braces)") from None
    parts = []
    for literal, name, spec, conversion in raw:
        if name is None:
            parts.append((literal, None, None))
            continue
        shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
        if not name:
            raise TemplateError(f"empty placeholder {shown}: name a metric, param or context value")
        if conversion:
            raise TemplateError(f"conversions such as !{conversion} are not supported in {shown}")
        if not _NAME.match(name):
            raise TemplateError(f"placeholder {shown} must be a plain or dotted name")
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError(f"nested placeholders are not supported in {shown}")
        parts.append((literal, name, spec or None))
    return Template(source=text, parts=tuple(parts))


def spec_ok(spec: str, samples: list[Any]) -> bool:
    """Whether `spec` formats at least one of the sample values (a float, an int, a string...)."""
    for v in samples:
        try:
            format(v, spec)
            return True
        except (ValueError, TypeError):
            continue
    return False


def format_value(value: Any, spec: Optional[str] = None) -> str:
    if value is None:
        return NOT_MEASURED
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            # e.g. `:d` given a count that arrived as 3.0 from JSON
            if isinstance(value, float) and value.is_integer():
                try:
                    return format(int(value), spec)
                except (ValueError, TypeError):
                    pass
    return compact(value)


def compact(value: Any) -> str:
    """Three significant digits for floats, without trailing noise; plain text for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    mag = abs(value)
    if 1e-3 <= mag < 1e6:
        if mag >= 100:
            return str(round(value))  # 1234.5 -> "1234" reads better than "1.23e+03"
        return f"{value:.3g}"
    mantissa, exp = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exp)}"
