"""Loading rule files: a good rule compiles; every bad one is a RuleError at the right file:line."""

from pathlib import Path

import pytest
import yaml

from doctor.engine import RuleError, load_rules
from doctor.engine.loader import load_rule_file
from doctor.report import Severity
from doctor.resources import rules_dir

# Line numbers below are referred to by the tests; keep them in step.
GOOD = """\
id: vanishing-gradients
symptom: vanishing_gradients
severity: warning
scope: model
title: Gradients vanish before reaching the first layers
params: {ratio: 1e-3, min_depth: 3}
when: grad.depth_ratio < ratio and static.depth >= min_depth
message: "Gradients at {grad.first_layer} are {grad.depth_ratio:.1e}x those at the output."
causes:
  - id: saturating-activations
    when: static.saturating_activations >= 3
    text: Deep stacks of sigmoid/tanh squash gradients layer by layer.
    fixes: ["Use ReLU or GELU, with He (Kaiming) initialisation."]
  - id: no-residual-paths
    text: No skip connections in a deep stack.
    fixes:
      - Add residual connections or normalisation layers.
evidence: [grad.norm_by_layer]
references: ["monitoring guide, part 3"]
doc:
  what: The gradient reaching the first layers is far smaller than at the output.
  why: Early layers barely learn, so training stalls or crawls.
  example: A 20-layer MLP of sigmoids.
  instead: Use ReLU-family activations, He init, residual paths or normalisation.
"""


def write(tmp_path: Path, text: str, name: str = "vanishing-gradients", sub: str = "") -> Path:
    folder = tmp_path / sub if sub else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def load_error(tmp_path: Path, text: str, name: str = "vanishing-gradients") -> tuple[RuleError, Path]:
    path = write(tmp_path, text, name)
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    return info.value, path


# -- a good rule ------------------------------------------------------------------------------


def test_good_rule_loads(tmp_path):
    path = write(tmp_path, GOOD)
    [rule] = load_rules([tmp_path], builtin=False)
    assert rule.id == "vanishing-gradients"
    assert rule.source == path
    assert rule.severity is Severity.warning
    assert rule.scope == "model"
    assert rule.params == {"ratio": 1e-3, "min_depth": 3}  # 1e-3 is a float, not the string "1e-3"
    assert rule.when.names == ("grad.depth_ratio", "static.depth")
    assert [c.id for c in rule.causes] == ["saturating-activations", "no-residual-paths"]
    assert rule.causes[0].when.names == ("static.saturating_activations",)
    assert rule.causes[1].when is None
    assert rule.causes[0].fixes == ("Use ReLU or GELU, with He (Kaiming) initialisation.",)
    assert rule.spec.evidence == ["grad.norm_by_layer"]
    assert rule.doc.what.startswith("The gradient")
    assert rule.line_of("when") == 7


def test_float_resolver_does_not_leak_into_safe_load():
    load_rule_file  # the module is imported: its YAML loader is set up
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}


def test_params_override(tmp_path):
    write(tmp_path, GOOD)
    [rule] = load_rules([tmp_path], builtin=False, params_overrides={"vanishing-gradients": {"ratio": 0.5, "min_depth": "5"}})
    assert rule.params == {"ratio": 0.5, "min_depth": 5}  # a string from a CLI is coerced to the default's type
    assert rule.spec.params["ratio"] == 1e-3  # the spec keeps the file's value


def test_override_of_unknown_param_is_an_error(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False, params_overrides={"vanishing-gradients": {"ratoi": 0.5}})
    err = info.value
    assert err.file == str(path) and err.line == 6
    assert "unknown param 'ratoi'" in err.message and "did you mean 'ratio'" in err.message


def test_override_with_wrong_type_is_an_error(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(RuleError, match="expected a number"):
        load_rules([tmp_path], builtin=False, params_overrides={"vanishing-gradients": {"ratio": "tiny"}})


def test_override_of_unknown_rule_is_an_error(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(RuleError, match="unknown rule 'vanishing-gradient'.*did you mean 'vanishing-gradients'"):
        load_rules([tmp_path], builtin=False, params_overrides={"vanishing-gradient": {"ratio": 1}})


def test_severity_override(tmp_path):
    write(tmp_path, GOOD)
    [rule] = load_rules([tmp_path], builtin=False, severity_overrides={"vanishing-gradients": "error"})
    assert rule.severity is Severity.error
    with pytest.raises(RuleError, match="must be error, warning or info"):
        load_rules([tmp_path], builtin=False, severity_overrides={"vanishing-gradients": "fatal"})


def test_rules_sorted_by_id_across_folders(tmp_path):
    write(tmp_path, GOOD, sub="b")
    other = GOOD.replace("id: vanishing-gradients", "id: aaa-first")
    write(tmp_path, other, name="aaa-first", sub="a/deeper")
    assert [r.id for r in load_rules([tmp_path], builtin=False)] == ["aaa-first", "vanishing-gradients"]


# -- errors with file and line ----------------------------------------------------------------


def test_unknown_metric_in_when(tmp_path):
    err, path = load_error(tmp_path, edit("when: grad.depth_ratio <", "when: grad.depth_ratoi <"))
    assert (err.file, err.line) == (str(path), 7)
    assert str(err).startswith(f"{path}:7: when: unknown metric 'grad.depth_ratoi'")
    assert "did you mean 'grad.depth_ratio'?" in str(err)


def test_error_in_literal_block_when_points_at_its_line(tmp_path):
    text = edit(
        "when: grad.depth_ratio < ratio and static.depth >= min_depth\n",
        "when: |\n  grad.depth_ratio < ratio\n  and static.dpth >= min_depth\n",
    )
    err, path = load_error(tmp_path, text)
    # `|` keeps the expression's lines: the typo is on its 2nd line, file line 9
    assert err.line == 9
    assert "unknown metric 'static.dpth'" in err.message and "line 2, column 5" in err.message


def test_multiline_when_loads(tmp_path):
    text = edit(
        "when: grad.depth_ratio < ratio and static.depth >= min_depth\n",
        "when: |\n  grad.depth_ratio < ratio\n  and static.depth >= min_depth\n",
    )
    write(tmp_path, text)
    [rule] = load_rules([tmp_path], builtin=False)
    assert rule.when.names == ("grad.depth_ratio", "static.depth")


def test_unknown_metric_in_cause_when(tmp_path):
    err, path = load_error(tmp_path, edit("when: static.saturating_activations", "when: static.saturating_activation"))
    assert err.line == 11
    assert "causes[0].when: unknown metric 'static.saturating_activation'" in err.message


def test_yaml_syntax_error(tmp_path):
    err, path = load_error(tmp_path, edit("title: Gradients vanish", "title: [Gradients vanish"))
    assert err.file == str(path)
    assert err.line is not None and 5 <= err.line <= 7
    assert "YAML syntax error" in err.message
    assert str(err).startswith(f"{path}:{err.line}: YAML syntax error")


def test_yaml_syntax_error_line_exact(tmp_path):
    err, path = load_error(tmp_path, edit("severity: warning\n", "severity: warning\n  bad: indent: here\n"))
    assert err.line == 4


def test_unknown_top_level_key(tmp_path):
    err, path = load_error(tmp_path, edit("evidence:", "wehn: init.loss > 1\nevidence:"))
    assert err.line == 18
    assert "unknown key 'wehn'" in err.message and "did you mean 'when'" in err.message


def test_unknown_key_in_cause(tmp_path):
    err, _ = load_error(tmp_path, edit("    text: No skip", "    fix: x\n    text: No skip"))
    assert err.line == 15
    assert "unknown key 'fix' in causes[1]" in err.message


def test_bad_severity(tmp_path):
    err, path = load_error(tmp_path, edit("severity: warning", "severity: fatal"))
    assert err.line == 3
    assert err.message.startswith("severity:") and "'fatal'" in err.message


def test_bad_symptom(tmp_path):
    err, _ = load_error(tmp_path, edit("symptom: vanishing_gradients", "symptom: vanishing_gradient"))
    assert err.line == 2
    assert "unknown symptom 'vanishing_gradient'" in err.message and "did you mean 'vanishing_gradients'" in err.message


def test_id_must_match_file_name(tmp_path):
    err, path = load_error(tmp_path, GOOD, name="vanishing")
    assert err.line == 1
    assert "must equal the file name 'vanishing'" in err.message


def test_id_must_be_kebab_case(tmp_path):
    err, _ = load_error(tmp_path, edit("id: vanishing-gradients", "id: Vanishing_Gradients"), name="Vanishing_Gradients")
    assert err.line == 1 and "kebab-case" in err.message


def test_duplicate_id(tmp_path):
    first = write(tmp_path, GOOD, sub="a")
    second = write(tmp_path, GOOD, sub="b")
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    err = info.value
    assert err.file == str(second) and err.line == 1
    assert "duplicate rule id 'vanishing-gradients'" in err.message and f"{first}:1" in err.message


def test_unknown_placeholder_in_message(tmp_path):
    err, _ = load_error(tmp_path, edit("{grad.first_layer}", "{first_layer}"))
    assert err.line == 8
    assert "unknown placeholder {first_layer}" in err.message and "did you mean 'grad.first_layer'" in err.message


def test_bad_format_spec_in_message(tmp_path):
    err, _ = load_error(tmp_path, edit("{grad.depth_ratio:.1e}", "{grad.depth_ratio:.1q}"))
    assert err.line == 8 and "invalid format spec ':.1q'" in err.message


def test_unbalanced_brace_in_message(tmp_path):
    err, _ = load_error(tmp_path, edit("those at the output.", "those at the output }"))
    assert err.line == 8 and "message:" in err.message


def test_message_may_use_params_and_context(tmp_path):
    write(tmp_path, edit("those at the output.", "those at the output (below {ratio:g}; rule {rule}; {{literal}})."))
    [rule] = load_rules([tmp_path], builtin=False)
    assert [n for n, _ in rule.message.placeholders] == ["grad.first_layer", "grad.depth_ratio", "ratio", "rule"]


def test_layer_context_name_refused_in_model_scope(tmp_path):
    err, _ = load_error(tmp_path, edit("Gradients at {grad.first_layer}", "Gradients at {layer}"))
    assert "unknown placeholder {layer}" in err.message


def test_missing_required_key(tmp_path):
    err, _ = load_error(tmp_path, edit("  why: Early layers barely learn, so training stalls or crawls.\n", ""))
    assert err.line == 20 and "missing required key 'why' in doc" in err.message


def test_missing_top_level_key(tmp_path):
    err, _ = load_error(tmp_path, edit("title: Gradients vanish before reaching the first layers\n", ""))
    assert err.line == 1 and "missing required key 'title'" in err.message


def test_when_must_be_a_string(tmp_path):
    err, _ = load_error(tmp_path, edit("when: grad.depth_ratio < ratio and static.depth >= min_depth", "when: 5"))
    assert err.line == 7 and err.message.startswith("when:")


def test_layer_metric_in_model_scope(tmp_path):
    err, _ = load_error(tmp_path, edit("when: grad.depth_ratio < ratio", "when: grad.norm < ratio"))
    assert err.line == 7 and "per-layer" in err.message and "scope: layer" in err.message


def test_layer_scope_needs_a_layer_metric(tmp_path):
    err, _ = load_error(tmp_path, edit("scope: model", "scope: layer"))
    assert err.line == 4 and "reads no per-layer metric" in err.message


def test_param_shadowing_a_function(tmp_path):
    err, _ = load_error(tmp_path, edit("params: {ratio: 1e-3, min_depth: 3}", "params: {ratio: 1e-3, min_depth: 3, max: 2}"))
    assert err.line == 6 and "shadows the function max()" in err.message


def test_param_value_must_be_scalar(tmp_path):
    err, _ = load_error(tmp_path, edit("params: {ratio: 1e-3, min_depth: 3}", "params:\n  ratio: [1]\n  min_depth: 3"))
    assert err.line == 7 and "params.ratio" in err.message


def test_unknown_evidence_series(tmp_path):
    err, _ = load_error(tmp_path, edit("evidence: [grad.norm_by_layer]", "evidence:\n  - grad.norm_by_layr"))
    assert err.line == 19 and "did you mean 'grad.norm_by_layer'" in err.message


def test_fix_split_at_comma_in_flow_list(tmp_path):
    text = edit('fixes: ["Use ReLU or GELU, with He (Kaiming) initialisation."]', "fixes: [Use ReLU or GELU, with He init.]")
    err, _ = load_error(tmp_path, text)
    assert err.line == 13 and "split at a comma" in err.message


def test_duplicate_yaml_key(tmp_path):
    err, _ = load_error(tmp_path, edit("evidence:", "severity: error\nevidence:"))
    assert err.line == 18 and "duplicate key 'severity'" in err.message


def test_duplicate_cause_id(tmp_path):
    err, _ = load_error(tmp_path, edit("  - id: no-residual-paths", "  - id: saturating-activations"))
    assert err.line == 14 and "duplicate cause id" in err.message


def test_empty_file(tmp_path):
    err, _ = load_error(tmp_path, "# nothing here\n")
    assert "empty rule file" in err.message


def test_not_a_mapping(tmp_path):
    err, _ = load_error(tmp_path, "- a\n- b\n")
    assert "must be a mapping" in err.message


def test_all_errors_are_reported(tmp_path):
    text = edit("severity: warning", "severity: fatal", edit("symptom: vanishing_gradients", "symptom: nope"))
    write(tmp_path, GOOD, name="other-rule")  # its id does not match: a second file's error
    err, path = load_error(tmp_path, text)
    lines = str(err).splitlines()
    assert len(err.errors) == 3 and len(lines) == 3
    assert {(e.file, e.line) for e in err.errors} >= {(str(path), 2), (str(path), 3)}


def test_missing_extra_dir(tmp_path):
    with pytest.raises(RuleError, match="rule directory not found"):
        load_rules([tmp_path / "nope"], builtin=False)


# -- the built-in rules -----------------------------------------------------------------------


def test_builtin_rules_load():
    rules = load_rules()  # raises, naming file and line, if any built-in rule is malformed
    ids = [r.id for r in rules]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    root = rules_dir()
    for rule in rules:
        assert rule.source.stem == rule.id
        assert root in rule.source.parents
    assert len(rules) == len(list(root.rglob("*.yaml")))


def test_class_scope_rule_with_keyword_metric_names(tmp_path):
    text = edit("scope: model", "scope: class")
    text = edit("when: grad.depth_ratio < ratio and static.depth >= min_depth", "when: class.count < min_depth", text)
    text = edit('"Gradients at {grad.first_layer} are {grad.depth_ratio:.1e}x those at the output."',
                '"Class {label} has {class.count:d} samples ({class.frac:.1%})."', text)
    write(tmp_path, text)
    [rule] = load_rules([tmp_path], builtin=False)
    assert rule.when.names == ("class.count",)
    assert [n for n, _ in rule.message.placeholders] == ["label", "class.count", "class.frac"]


def test_explain_covers_the_doc(tmp_path):
    from doctor.engine.explain import explain

    write(tmp_path, GOOD)
    [rule] = load_rules([tmp_path], builtin=False)
    text = explain(rule)
    for fragment in ["vanishing-gradients: Gradients vanish", "Why it matters", "A 20-layer MLP of sigmoids.",
                     "grad.depth_ratio < ratio", "ratio = 0.001", "saturating-activations",
                     "likely when: static.saturating_activations >= 3", "fix: Add residual connections",
                     "monitoring guide, part 3", str(rule.source)]:
        assert fragment in text


def test_a_lone_path_is_not_iterated(tmp_path):
    write(tmp_path, GOOD)
    assert [r.id for r in load_rules(str(tmp_path), builtin=False)] == ["vanishing-gradients"]
