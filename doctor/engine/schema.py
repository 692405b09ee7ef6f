"""The rule file model: which keys a rule YAML may have and what each must hold.

This checks shape only. Checks that need the file or cross-reference fields (id equals the file
name, `when` and message names, scope consistency, unique cause ids) live in the loader, which
knows the line of every key.
"""

from __future__ import annotations

import difflib
import keyword
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from doctor.engine.expr import FUNCTIONS
from doctor.engine.template import RESERVED_NAMES
from doctor.metrics import CATALOGUE, SERIES
from doctor.symptoms import SYMPTOMS

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TITLE_MAX = 80


def suggest(word: str, candidates: Any) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    close = difflib.get_close_matches(str(word), sorted(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _kebab(v: str) -> str:
    if not KEBAB.match(v):
        raise ValueError(f"must be kebab-case (lowercase words joined by '-'), got '{v}'")
    return v


def _symptom(v: str) -> str:
    if v not in SYMPTOMS:
        raise ValueError(f"unknown symptom '{v}'{suggest(v, SYMPTOMS)}; symptoms are listed in doctor/symptoms.py")
    return v


def _title(v: str) -> str:
    if "\n" in v:
        raise ValueError("must be one line")
    if len(v) > TITLE_MAX:
        raise ValueError(f"must be at most {TITLE_MAX} characters, got {len(v)}")
    return v


def _evidence(v: str) -> str:
    if v not in SERIES and v not in CATALOGUE:
        raise ValueError(f"unknown series or metric '{v}'{suggest(v, list(SERIES) + list(CATALOGUE))}")
    return v


def _param_name(v: str) -> str:
    if not v.isidentifier() or keyword.iskeyword(v) or v.startswith("_"):
        raise ValueError(f"param name '{v}' must be a plain identifier (letters, digits, '_'; not a Python keyword)")
    if v in FUNCTIONS:
        raise ValueError(f"param name '{v}' shadows the function {v}()")
    if v in RESERVED_NAMES:
        raise ValueError(f"param name '{v}' is reserved for message context")
    return v


def _param_value(v: Any) -> Any:
    if not isinstance(v, (bool, int, float, str)):
        raise ValueError(f"a param must be a number, string or boolean, got {type(v).__name__}")
    return v


def _none_as_empty(empty: Any) -> BeforeValidator:
    # `params:` or `causes:` with nothing after it loads as None; read it as empty.
    return BeforeValidator(lambda v: empty() if v is None else v)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Kebab = Annotated[str, AfterValidator(_kebab)]
ParamName = Annotated[str, AfterValidator(_param_name)]
ParamValue = Annotated[Any, AfterValidator(_param_value)]


class _Spec(BaseModel):
    # strict: YAML already gives real types; a `when: 5` must not silently become "5"
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CauseSpec(_Spec):
    """One candidate cause of the symptom, with the condition that supports it and its fixes."""

    id: Kebab
    when: Optional[Text] = None
    text: Text
    fixes: Annotated[list[Text], Field(min_length=1)]
    # A fix kind (doctor/collect/fixes/) that carries out this cause's first fix mechanically, so that
    # --verify-fixes can apply it in a re-run and show whether the symptom goes.
    apply: Optional[Kebab] = None


def _check_shorthand(v: Any) -> Any:
    # `confirmed_by: <expression>` is short for `confirmed_by: {when: <expression>}`.
    return {"when": v} if isinstance(v, str) else v


class CheckSpec(_Spec):
    """A condition over measurements that confirms (or contradicts) a fired rule, and what to say then."""

    when: Text
    note: Optional[Text] = None  # a message template; without one the note lists the values it read


Check = Annotated[Optional[CheckSpec], BeforeValidator(_check_shorthand)]


class DocSpec(_Spec):
    """What `doctor explain RULE` prints."""

    what: Text  # what the rule detects
    why: Text  # why it matters for training
    example: Text  # a minimal case that triggers it
    instead: Text  # what to do instead


class RuleSpec(_Spec):
    id: Kebab
    symptom: Annotated[str, AfterValidator(_symptom)]
    severity: Literal["error", "warning", "info"]
    scope: Literal["model", "layer", "class"] = "model"
    title: Annotated[Text, AfterValidator(_title)]
    params: Annotated[dict[ParamName, ParamValue], _none_as_empty(dict)] = Field(default_factory=dict)
    when: Text
    message: Text
    causes: Annotated[list[CauseSpec], _none_as_empty(list)] = Field(default_factory=list)
    evidence: Annotated[list[Annotated[str, AfterValidator(_evidence)]], _none_as_empty(list)] = Field(default_factory=list)
    # Static suspicion meets dynamic evidence: a fired rule whose `confirmed_by` holds is reported with high
    # confidence; one that could not be confirmed with medium; one whose `contradicted_by` holds drops to info.
    confirmed_by: Check = None
    contradicted_by: Check = None
    # A text metric naming the subject (module path or call) the finding is about; the judge looks up its
    # file and line in Metrics.layer_sites. Layer-scoped rules are located at their layer without it.
    location: Optional[Text] = None
    # Rules whose findings this one explains: when both fire, theirs are shown as consequences of this finding
    # and counted once; a crash that one of them names (doctor/collect/crash.py) is explained by this one too.
    explains: Annotated[list[Kebab], _none_as_empty(list)] = Field(default_factory=list)
    references: Annotated[list[Text], _none_as_empty(list)] = Field(default_factory=list)
    # Judged by doctor.watch on the user's own training run, from the curves and per-layer statistics it
    # keeps; a rule that needs doctor's probes (a range test, a memorised batch) cannot be.
    live: bool = False
    doc: DocSpec
