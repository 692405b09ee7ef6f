"""Judge: load YAML rules, evaluate them against metrics, rank causes."""

from doctor.engine.evaluate import Judgement, judge
from doctor.engine.expr import EvalError, Expr, ExprError, Missing, compile_expr
from doctor.engine.loader import Cause, Rule, RuleError, load_rule_file, load_rules
from doctor.engine.template import RESERVED

__all__ = [
    "Cause", "EvalError", "Expr", "ExprError", "Judgement", "Missing", "RESERVED", "Rule", "RuleError",
    "compile_expr", "judge", "load_rule_file", "load_rules",
]
