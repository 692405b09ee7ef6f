"""Judging hand-built Metrics: which rules fire where, what they say, and how causes rank."""

import textwrap
from pathlib import Path

import pytest

from doctor.engine import judge, load_rules
from doctor.engine.template import compact, format_value
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus
from doctor.report import Severity

DOC = """\
doc:
  what: w
  why: y
  example: e
  instead: i
"""


def rule_file(folder: Path, rid: str, body: str) -> None:
    text = f"id: {rid}\ntitle: Test rule {rid}\n" + textwrap.dedent(body) + DOC
    (folder / f"{rid}.yaml").write_text(text)


@pytest.fixture
def rules_dir(tmp_path):
    rule_file(tmp_path, "vanishing-gradients", """\
        symptom: vanishing_gradients
        severity: warning
        params: {ratio: 1e-3}
        when: grad.depth_ratio < ratio and not loss.nonfinite
        message: "Gradients at {grad.first_layer} are {grad.depth_ratio:.1e}x those at the output (limit {ratio})."
        causes:
          - id: no-residual-paths
            text: No skip connections.
            fixes: [Add residual connections.]
          - id: no-normalisation
            when: static.normalization_layers == 0
            text: No normalisation layers.
            fixes: [Add BatchNorm or LayerNorm.]
          - id: lr-tiny
            when: setup.lr < 1e-5
            text: The learning rate is tiny.
            fixes: [Raise it.]
          - id: saturating-activations
            when: static.saturating_activations >= 3
            text: Sigmoid/tanh stacks.
            fixes: [Use ReLU.]
          - id: bad-init
            when: init.loss_ratio > 3
            text: Poor initialisation.
            fixes: [Use He init.]
        evidence: [grad.norm_by_layer]
        references: ["guide part 3"]
        """)
    rule_file(tmp_path, "nan-loss", """\
        symptom: nan_loss
        severity: error
        when: loss.nonfinite or grad.nonfinite
        message: "The loss became NaN at step {loss.first_nonfinite_step}."
        """)
    rule_file(tmp_path, "dead-relu", """\
        symptom: dead_relu
        severity: warning
        scope: layer
        params: {limit: 0.5}
        when: act.dead_frac > limit
        message: "{act.dead_frac:.0%} of {layer} ({layer_type}) is dead."
        causes:
          - id: high-lr
            when: setup.lr >= 0.01
            text: LR too high.
            fixes: [Lower it.]
        evidence: [act.dead_frac_by_layer]
        """)
    rule_file(tmp_path, "rare-class", """\
        symptom: class_imbalance
        severity: info
        scope: class
        when: class.frac < 0.05
        message: "Class {label} holds {class.frac:.1%} of the samples ({class.count} of {data.samples})."
        """)
    return tmp_path


def by_rule(judgement, rid):
    return [f for f in judgement.findings if f.rule == rid]


def test_model_scope_fires_with_evidence_and_message(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(scalars={"grad.depth_ratio": 2.5e-5, "loss.nonfinite": False, "grad.first_layer": "net.0"})
    [f] = by_rule(judge(rules, m), "vanishing-gradients")
    assert f.severity is Severity.warning and f.symptom == "vanishing_gradients"
    assert f.message == "Gradients at net.0 are 2.5e-05x those at the output (limit 0.001)."
    assert [(e.name, e.value, e.unit) for e in f.evidence] == [("grad.depth_ratio", 2.5e-5, "x"), ("loss.nonfinite", False, "")]
    assert f.charts == ["grad.norm_by_layer"] and f.references == ["guide part 3"]
    assert f.location.module is None


def test_model_scope_passes_when_condition_false(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(scalars={"grad.depth_ratio": 0.5, "loss.nonfinite": False, "grad.nonfinite": False})
    j = judge(rules, m)
    assert j.findings == []
    assert j.evaluated == 2 and set(j.passed) == {"vanishing-gradients", "nan-loss"}


def test_param_override_changes_the_verdict(rules_dir):
    m = Metrics(scalars={"grad.depth_ratio": 0.5, "loss.nonfinite": False})
    rules = load_rules([rules_dir], builtin=False, params_overrides={"vanishing-gradients": {"ratio": 1.0}})
    [f] = by_rule(judge(rules, m), "vanishing-gradients")
    assert "(limit 1)" in f.message


def test_severity_override_reaches_findings(rules_dir):
    m = Metrics(scalars={"grad.depth_ratio": 1e-6, "loss.nonfinite": False})
    rules = load_rules([rules_dir], builtin=False, severity_overrides={"vanishing-gradients": "info"})
    [f] = by_rule(judge(rules, m), "vanishing-gradients")
    assert f.severity is Severity.info


def test_missing_metric_skips_rule_with_probe_reason(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(
        scalars={"loss.nonfinite": False},
        probes=[ProbeRecord(name="gradient_flow", status=ProbeStatus.skipped, reason="no training data")],
    )
    j = judge(rules, m)
    assert by_rule(j, "vanishing-gradients") == []
    assert "vanishing-gradients" not in j.passed
    [reason] = [s for s in j.skipped if s.startswith("vanishing-gradients:")]
    assert "grad.depth_ratio not measured" in reason and "gradient_flow skipped: no training data" in reason
    # nan-loss reads `loss.nonfinite or grad.nonfinite`: false or unknown is unknown, so skipped too
    assert any(s.startswith("nan-loss:") for s in j.skipped)
    # layer and class rules with nothing per layer/class are skipped, not passed
    assert "dead-relu: no per-layer metrics were measured" in j.skipped
    assert "rare-class: no per-class metrics were measured" in j.skipped
    assert j.evaluated == 0 and j.passed == []


def test_or_fires_even_if_other_side_missing(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    j = judge(rules, Metrics(scalars={"grad.nonfinite": True}))
    [f] = by_rule(j, "nan-loss")
    assert f.message == "The loss became NaN at step n/a."  # unmeasured message value
    assert [(e.name, e.value) for e in f.evidence] == [("grad.nonfinite", True)]


def test_layer_scope_per_layer_in_forward_order(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(
        scalars={"setup.lr": 0.1},
        layers={
            "net.1": {"act.dead_frac": 0.9},
            "net.0": {"grad.norm": 1.0},  # no activation metric: passed over silently
            "net.3": {"act.dead_frac": 0.1},
            "net.2": {"act.dead_frac": 0.75},
        },
        layer_types={"net.1": "ReLU", "net.2": "ReLU6"},
    )
    j = judge(rules, m)
    found = by_rule(j, "dead-relu")
    assert [f.location.module for f in found] == ["net.1", "net.2"]  # dict order, not sorted
    assert found[0].message == "90% of net.1 (ReLU) is dead."
    assert found[1].message == "75% of net.2 (ReLU6) is dead."
    assert [(e.name, e.value) for e in found[1].evidence] == [("act.dead_frac", 0.75)]
    assert found[0].causes[0].status == "supported"  # model-wide metric read inside a layer rule
    assert j.evaluated >= 1 and not any(s.startswith("dead-relu") for s in j.skipped)


def test_layer_rule_skipped_when_no_layer_has_the_metric(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    j = judge(rules, Metrics(layers={"net.0": {"grad.norm": 1.0}}))
    [reason] = [s for s in j.skipped if s.startswith("dead-relu:")]
    assert "act.dead_frac not measured for any layer" in reason


def test_class_scope(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(
        scalars={"data.samples": 1000},
        classes={"0": {"class.frac": 0.6, "class.count": 600}, "1": {"class.frac": 0.39, "class.count": 390},
                 "2": {"class.frac": 0.01, "class.count": 10}},
    )
    [f] = by_rule(judge(rules, m), "rare-class")
    assert f.message == "Class 2 holds 1.0% of the samples (10 of 1000)."
    assert f.severity is Severity.info


def test_cause_ranking_and_statuses(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(scalars={
        "grad.depth_ratio": 1e-6, "loss.nonfinite": False,
        "static.normalization_layers": 2,  # rules out no-normalisation
        "setup.lr": 1e-6,  # supports lr-tiny
        "static.saturating_activations": 4,  # supports saturating-activations
        # init.loss_ratio not measured: bad-init unknown
    })
    [f] = by_rule(judge(rules, m), "vanishing-gradients")
    assert [(c.id, c.status) for c in f.causes] == [
        ("lr-tiny", "supported"),
        ("saturating-activations", "supported"),  # file order within a status
        ("no-residual-paths", "possible"),
        ("bad-init", "unknown"),
        ("no-normalisation", "ruled_out"),
    ]
    causes = {c.id: c for c in f.causes}
    assert [(e.name, e.value, e.unit) for e in causes["saturating-activations"].evidence] == [
        ("static.saturating_activations", 4, "layers")]
    assert [(e.name, e.value) for e in causes["no-normalisation"].evidence] == [("static.normalization_layers", 2)]
    assert [(e.name, e.value) for e in causes["bad-init"].evidence] == [("init.loss_ratio", None)]
    assert causes["no-residual-paths"].evidence == [] and causes["lr-tiny"].fixes == ["Raise it."]


def test_findings_sorted_by_severity_then_rule(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    m = Metrics(
        scalars={"grad.depth_ratio": 1e-6, "loss.nonfinite": True, "setup.lr": 0.1, "data.samples": 10},
        layers={"b": {"act.dead_frac": 0.9}, "a": {"act.dead_frac": 0.9}},
        classes={"7": {"class.frac": 0.01, "class.count": 1}},
    )
    # vanishing-gradients does not fire (loss.nonfinite); nan-loss (error) does
    j = judge(rules, m)
    assert [(f.rule, f.location.module) for f in j.findings] == [
        ("nan-loss", None), ("dead-relu", "b"), ("dead-relu", "a"), ("rare-class", None)]


def test_type_mismatch_in_metrics_skips_instead_of_crashing(rules_dir):
    rules = load_rules([rules_dir], builtin=False)
    j = judge(rules, Metrics(scalars={"grad.depth_ratio": "tiny", "loss.nonfinite": False}))
    [reason] = [s for s in j.skipped if s.startswith("vanishing-gradients:")]
    assert "cannot evaluate" in reason


def test_division_by_zero_reason(tmp_path):
    rule_file(tmp_path, "init-loss", """\
        symptom: init_loss
        severity: warning
        when: init.loss / init.expected_loss > 3
        message: "Initial loss {init.loss}."
        """)
    j = judge(load_rules([tmp_path], builtin=False), Metrics(scalars={"init.loss": 2.0, "init.expected_loss": 0.0}))
    assert j.skipped == ["init-loss: division by zero"]


def test_builtin_rules_judge_empty_metrics():
    # every built-in rule must cope with nothing measured: skipped, never crashing or firing
    rules = load_rules()
    j = judge(rules, Metrics())
    assert j.findings == [] and j.evaluated == 0
    assert len(j.skipped) == len(rules)


@pytest.mark.parametrize(
    "value, spec, text",
    [
        (2.5e-5, None, "2.5e-5"),
        (0.123456, None, "0.123"),
        (12.3456, None, "12.3"),
        (1234.5, None, "1234"),
        (3.0, None, "3"),
        (1.5e7, None, "1.5e7"),
        (0.0, None, "0"),
        (float("inf"), None, "inf"),
        (7, None, "7"),
        (True, None, "true"),
        ("fc1", None, "fc1"),
        (None, None, "n/a"),
        (0.256, ".0%", "26%"),
        (3.0, "d", "3"),  # a count that arrived as a float still takes :d
        (2.5, "d", "2.5"),  # a spec that cannot apply falls back to the compact form
    ],
)
def test_value_formatting(value, spec, text):
    assert format_value(value, spec) == text


def test_compact_negative():
    assert compact(-0.000123) == "-1.23e-4"


def test_a_unit_glued_to_a_value_not_measured_goes_with_it() -> None:
    from doctor.engine.template import parse_template  # noqa: PLC0415

    t = parse_template("first {a:.3g}x the last; peak {b:.3g}x, {c} xylophones, {d:.3g}x")
    values = {"a": float("nan"), "b": 2.0, "c": None, "d": None}
    assert t.render(values.__getitem__) == "first nan the last; peak 2x, n/a xylophones, n/a"
