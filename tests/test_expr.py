"""The `when` language: what it computes, how missing metrics propagate, and what it refuses."""

import math

import pytest

from doctor.engine.expr import EvalError, ExprError, Missing, compile_expr


def lookup(values):
    def get(name):
        if values.get(name) is None:
            raise Missing(name)
        return values[name]

    return get


def ev(source, values=None, params=None):
    expr = compile_expr(source, params=params or {})
    return expr.evaluate(lookup(values or {}), params or {})


# -- what it computes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("2 ** 10", 1024.0),
        ("-3 + +1", -2),
        ("1 < 2 <= 2 < 3", True),
        ("3 > 2 > 2", False),
        ("1 == 1.0 != 2", True),
        ("'relu' in ['relu', 'gelu']", True),
        ("'tanh' not in ('relu', 'gelu')", True),
        ("not 0", True),
        ("max(1, 5, 3)", 5),
        ("min([4, 2, 8])", 2),
        ("abs(-2.5)", 2.5),
        ("mean(1, 2, 6)", 3.0),
        ("log10(1000)", 3.0),
        ("any(False, 0, 1 > 0)", True),
        ("all(True, 1 > 2)", False),
        ("None == None or True", True),
    ],
)
def test_computes(source, expected):
    assert ev(source) == expected


def test_dotted_names_and_params():
    expr = compile_expr("grad.depth_ratio < ratio and not loss.nonfinite", params={"ratio": 1e-3})
    assert expr.names == ("grad.depth_ratio", "loss.nonfinite")
    assert expr.params == ("ratio",)
    assert expr.evaluate(lookup({"grad.depth_ratio": 1e-5, "loss.nonfinite": False}), {"ratio": 1e-3}) is True
    assert expr.evaluate(lookup({"grad.depth_ratio": 1e-2, "loss.nonfinite": False}), {"ratio": 1e-3}) is False
    # the param value comes from the caller, so an override changes the outcome
    assert expr.evaluate(lookup({"grad.depth_ratio": 1e-2, "loss.nonfinite": False}), {"ratio": 1.0}) is True


def test_names_are_listed_once_in_order():
    expr = compile_expr("init.loss > 2 * init.expected_loss or init.loss > 100")
    assert expr.names == ("init.loss", "init.expected_loss")


def test_keyword_segment_in_dotted_name():
    # class.count contains a Python keyword; it must still read as a metric name.
    expr = compile_expr("class.frac < 0.01 and class.count >= 1")
    assert expr.names == ("class.frac", "class.count")
    assert expr.evaluate(lookup({"class.frac": 0.001, "class.count": 3})) is True


def test_text_metrics_compare():
    assert ev("setup.task == 'regression'", {"setup.task": "regression"}) is True
    assert ev("act.kind in ['sigmoid', 'tanh']", {"act.kind": "relu"}) is False


# -- missing metrics --------------------------------------------------------------------------


def test_missing_name_raises_missing():
    with pytest.raises(Missing) as info:
        ev("init.loss > 1")
    assert info.value.name == "init.loss"


def test_none_value_is_missing():
    with pytest.raises(Missing):
        ev("init.loss > 1", {"init.loss": None})


@pytest.mark.parametrize(
    "source, expected",
    [
        ("loss.nonfinite or grad.nonfinite", True),  # first true: second never needed
        ("grad.nonfinite or loss.nonfinite", True),  # missing first, true second: still true
        ("init.nonfinite and grad.nonfinite", False),  # a false operand decides `and`
        ("grad.nonfinite and init.nonfinite", False),
        ("any(grad.nonfinite, loss.nonfinite)", True),
        ("all(grad.nonfinite, init.nonfinite)", False),
    ],
)
def test_and_or_decide_without_missing_operand(source, expected):
    values = {"loss.nonfinite": True, "init.nonfinite": False}  # grad.nonfinite not measured
    assert ev(source, values) is expected


@pytest.mark.parametrize(
    "source",
    [
        "loss.nonfinite and grad.nonfinite",  # true and unknown: unknown
        "init.nonfinite or grad.nonfinite",  # false or unknown: unknown
        "not grad.nonfinite",
        "grad.total_norm_max * 2 > 1",
        "max(1, grad.total_norm_max) > 1",
        "1 < grad.total_norm_max",
        "init.loss > None",
    ],
)
def test_missing_propagates(source):
    values = {"loss.nonfinite": True, "init.nonfinite": False, "init.loss": 1.0}
    with pytest.raises(Missing):
        ev(source, values)


def test_short_circuit_does_not_look_up_the_rest():
    seen = []

    def get(name):
        seen.append(name)
        return {"loss.nonfinite": True}[name]

    compile_expr("loss.nonfinite or grad.nonfinite").evaluate(get)
    assert seen == ["loss.nonfinite"]


@pytest.mark.parametrize("source", ["1 / (init.loss - 1)", "5 % (init.loss - 1)", "log10(init.loss - 1)", "10.0 ** 400"])
def test_division_by_zero_and_domain_errors_are_missing(source):
    with pytest.raises(Missing):
        ev(source, {"init.loss": 1.0})


def test_wrong_runtime_type_is_eval_error():
    # the catalogue says init.loss is a number; a metrics file holding text is caught, not crashed on
    with pytest.raises(EvalError):
        ev("init.loss < 3", {"init.loss": "high"})


def test_huge_power_does_not_hang():
    with pytest.raises(Missing):
        ev("10 ** 10 ** 10")


# -- what it refuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("__import__('os')", "function '__import__' is not allowed"),
        ("().__class__", "dunder"),
        ("(1).real", "attribute access is not allowed"),
        ("'x'.upper", "attribute access is not allowed"),
        ("max(1, 2).real", "attribute access is not allowed"),
        ("lambda: 1", "lambda"),
        ("x[0]", "subscripts"),
        ("grad.norm[0]", "subscripts"),
        ("[a for a in b]", "comprehensions"),
        ("(a for a in b)", "generator"),
        ("open('f')", "function 'open' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("max(x=1)", "keyword arguments"),
        ("max(*[1, 2])", "starred"),
        ("grad.norm.__class__", "dunder"),
        ("__builtins__", "dunder"),
        ("_secret < 1", "starting with '_'"),
        ("grad._x", "starting with '_'"),
        ("f'{init.loss}'", "f-strings"),
        ("(x := 1)", ":="),
        ("1 if init.loss else 2", "conditional"),
        ("{'a': 1}", "dict"),
        ("{1, 2}", "set"),
        ("init.loss is None", "is"),
        ("1 << 2", "LShift"),
        ("1j", "constant"),
        ("b'x'", "constant"),
        ("[1, 2]", "list literals"),
        ("max", "is a function"),
        ("max()", "takes at least 1"),
        ("abs(1, 2)", "takes 1"),
        ("init.loss >", "syntax error"),
        ("", "empty"),
        ("setup.task > 3", "cannot order text"),
        ("setup.task + 1", "arithmetic needs numbers"),
    ],
)
def test_refused(source, fragment):
    with pytest.raises(ExprError) as info:
        compile_expr(source, params={"ratio": 1.0})
    assert fragment in str(info.value)


def test_unknown_metric_suggests_nearest():
    with pytest.raises(ExprError) as info:
        compile_expr("init.loss > 1 and grad.depth_ratoi < 1e-3")
    err = info.value
    assert "unknown metric 'grad.depth_ratoi'" in err.message
    assert "did you mean 'grad.depth_ratio'?" in err.message
    assert err.col == 18  # 0-based: points at the bad name
    assert "(column 19)" in str(err)


def test_unknown_bare_name_suggests_param():
    with pytest.raises(ExprError, match=r"unknown name 'ratoi' \(did you mean 'ratio'\?\)"):
        compile_expr("grad.depth_ratio < ratoi", params={"ratio": 1e-3})


def test_lowercase_true_suggests_python_constant():
    with pytest.raises(ExprError, match="did you mean 'True'"):
        compile_expr("loss.nonfinite == true")


def test_names_ok_callable_can_explain_refusal():
    def ok(name):
        return "per-layer only" if name == "grad.norm" else name == "init.loss"

    assert compile_expr("init.loss > 1", names_ok=ok).names == ("init.loss",)
    with pytest.raises(ExprError, match="per-layer only"):
        compile_expr("grad.norm > 1", names_ok=ok)
    with pytest.raises(ExprError, match="unknown metric"):
        compile_expr("grad.rms > 1", names_ok=ok)


def test_names_ok_collection():
    assert compile_expr("my.metric > 1", names_ok={"my.metric"}).names == ("my.metric",)
    with pytest.raises(ExprError):
        compile_expr("init.loss > 1", names_ok={"my.metric"})


def test_syntax_error_column():
    with pytest.raises(ExprError) as info:
        compile_expr("init.loss > > 1")
    assert info.value.col == 12


def test_source_is_never_executed(tmp_path, monkeypatch):
    # nothing the parser accepts can reach builtins: a would-be side effect is refused at compile time
    monkeypatch.chdir(tmp_path)
    for src in ["open('pwned', 'w')", "__import__('os').system('touch pwned')", "exec('x=1')", "compile('1','','eval')"]:
        with pytest.raises(ExprError):
            compile_expr(src)
    assert not (tmp_path / "pwned").exists()


def test_nan_is_a_value_not_missing():
    assert ev("init.loss > 1", {"init.loss": math.nan}) is False


def test_deep_nesting_is_refused_not_a_crash():
    with pytest.raises(ExprError, match="nested more than"):
        compile_expr("not " * 200 + "True")
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("+".join(["1"] * 5000))
    assert compile_expr("+".join(["1"] * 30)).evaluate(lookup({})) == 30


def test_multiline_expression():
    expr = compile_expr("init.loss > 1\nand init.nonfinite == False")
    assert expr.evaluate(lookup({"init.loss": 2.0, "init.nonfinite": False})) is True


def test_keyword_names_across_ragged_lines():
    # a YAML block may indent continuation lines unevenly; names with keywords must still parse
    expr = compile_expr("class.count < 5\n    and class.frac < 0.1\n  and class.count > 0")
    assert expr.names == ("class.count", "class.frac")
