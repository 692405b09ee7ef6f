"""Static suspicion meets dynamic evidence: confirmed_by / contradicted_by set a finding's confidence,
and `location:` (or the layer) points a finding at the file and line in Metrics.layer_sites."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from doctor.engine import RuleError, judge, load_rules
from doctor.engine.explain import explain
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus
from doctor.report import Severity

DOC = """\
doc:
  what: w
  why: y
  example: e
  instead: i
"""

SOFTMAX = """\
symptom: double_softmax
severity: warning
location: static.output_op_at
when: static.output_op == "softmax" and static.loss_kind == "cross_entropy"
message: "Softmax at {static.output_op_at} before {static.loss_name}."
"""

FIRED = {"static.output_op": "softmax", "static.loss_kind": "cross_entropy", "static.loss_name": "CrossEntropyLoss",
         "static.output_op_at": "3", "static.softmax_loss_floor": 0.744}


def write(folder: Path, rid: str, body: str) -> Path:
    path = folder / f"{rid}.yaml"
    path.write_text(f"id: {rid}\ntitle: Test rule {rid}\n" + textwrap.dedent(body) + DOC)
    return path


def one(folder: Path, body: str, metrics: Metrics, rid: str = "double-softmax"):
    write(folder, rid, body)
    [rule] = load_rules([folder], builtin=False)
    findings = judge([rule], metrics).findings
    assert len(findings) == 1, findings
    return rule, findings[0]


CHECKS = SOFTMAX + """\
confirmed_by:
  when: acc.train_end >= 0.9 and loss.train_end >= 0.9 * static.softmax_loss_floor
  note: "Accuracy {acc.train_end:.0%} but loss {loss.train_end:.3g}."
contradicted_by: loss.train_end < 0.9 * static.softmax_loss_floor
"""


def test_no_checks_keeps_high_confidence_and_no_notes(tmp_path):
    _, f = one(tmp_path, SOFTMAX, Metrics(scalars=FIRED))
    assert f.confidence == "high" and f.notes == [] and f.severity is Severity.warning


def test_confirmed_keeps_severity_rises_to_high_with_the_rules_note(tmp_path):
    m = Metrics(scalars={**FIRED, "acc.train_end": 0.97, "loss.train_end": 0.80})
    _, f = one(tmp_path, CHECKS, m)
    assert f.severity is Severity.warning and f.confidence == "high"
    assert f.notes == ["Accuracy 97% but loss 0.8."]
    # the confirming measurements join the evidence, once each
    names = [e.name for e in f.evidence]
    assert {"acc.train_end", "loss.train_end"} <= set(names) and len(names) == len(set(names))


def test_confirmation_without_note_lists_the_values_it_read(tmp_path):
    body = SOFTMAX + "confirmed_by: acc.train_end >= 0.9\n"
    _, f = one(tmp_path, body, Metrics(scalars={**FIRED, "acc.train_end": 0.95}))
    assert f.confidence == "high"
    assert f.notes == ["Confirmed by measurement: acc.train_end = 0.95."]


def test_unmeasured_confirmation_is_medium_and_says_which_probe_did_not_run(tmp_path):
    m = Metrics(scalars=FIRED, probes=[ProbeRecord(name="train_val", status=ProbeStatus.skipped, reason="--static")])
    _, f = one(tmp_path, CHECKS, m)
    assert f.confidence == "medium" and f.severity is Severity.warning
    [note] = f.notes
    assert note.startswith("Not confirmed by a measurement")
    assert "acc.train_end was not measured (probe train_val skipped: --static)" in note


def test_confirmation_that_is_false_is_medium(tmp_path):
    # accuracy too low to tell a floor from a model that has not learnt yet: neither confirmed nor contradicted
    m = Metrics(scalars={**FIRED, "acc.train_end": 0.5, "loss.train_end": 1.2})
    _, f = one(tmp_path, CHECKS, m)
    assert f.confidence == "medium" and f.severity is Severity.warning
    assert f.notes and "do not confirm" in f.notes[0] and "acc.train_end = 0.5" in f.notes[0]


def test_contradicted_is_lowered_to_info_with_a_note(tmp_path):
    m = Metrics(scalars={**FIRED, "acc.train_end": 0.99, "loss.train_end": 0.05})
    _, f = one(tmp_path, CHECKS, m)
    assert f.confidence == "low" and f.severity is Severity.info
    [note] = f.notes
    assert note.startswith("Contradicted by measurement: loss.train_end = 0.05")
    assert note.endswith("Lowered from warning to info.")


def test_contradiction_wins_over_confirmation(tmp_path):
    body = SOFTMAX + "confirmed_by: acc.train_end > 0.5\ncontradicted_by: loss.train_end < 0.1\n"
    _, f = one(tmp_path, body, Metrics(scalars={**FIRED, "acc.train_end": 0.99, "loss.train_end": 0.05}))
    assert f.confidence == "low" and f.severity is Severity.info


def test_lowered_findings_sort_with_the_info_ones_and_do_not_count_as_warnings(tmp_path):
    write(tmp_path, "double-softmax", CHECKS)
    write(tmp_path, "nan-loss", "symptom: nan_loss\nseverity: info\nwhen: loss.nonfinite\nmessage: \"nan\"\n")
    write(tmp_path, "init-loss", "symptom: init_loss\nseverity: warning\nwhen: init.loss_ratio > 2\nmessage: \"x\"\n")
    rules = load_rules([tmp_path], builtin=False)
    m = Metrics(scalars={**FIRED, "acc.train_end": 0.99, "loss.train_end": 0.05, "loss.nonfinite": True,
                         "init.loss_ratio": 3.0})
    order = [(f.rule, f.severity.value) for f in judge(rules, m).findings]
    assert order[0] == ("init-loss", "warning")
    assert set(order[1:]) == {("double-softmax", "info"), ("nan-loss", "info")}


def test_model_scope_location_comes_from_the_named_metric_and_layer_sites(tmp_path):
    m = Metrics(scalars=FIRED, layer_sites={"3": "/home/u/model.py:17", "0": "/home/u/model.py:15"})
    _, f = one(tmp_path, SOFTMAX, m)
    assert (f.location.module, f.location.file, f.location.line) == ("3", "/home/u/model.py", 17)


def test_location_for_a_call_and_a_windows_path(tmp_path):
    m = Metrics(scalars={**FIRED, "static.output_op_at": "F.softmax in Net.forward"},
                layer_sites={"F.softmax in Net.forward": r"C:\work\model.py:23"})
    _, f = one(tmp_path, SOFTMAX, m)
    assert (f.location.module, f.location.file, f.location.line) == ("F.softmax in Net.forward", r"C:\work\model.py", 23)


def test_location_without_a_known_site_keeps_the_subject_only(tmp_path):
    _, f = one(tmp_path, SOFTMAX, Metrics(scalars=FIRED))
    assert (f.location.module, f.location.file, f.location.line) == ("3", None, None)


def test_layer_scope_findings_are_located_at_their_layer(tmp_path):
    body = """\
        symptom: dead_relu
        severity: warning
        scope: layer
        when: act.dead_frac > 0.5
        message: "{layer} is dead."
        """
    m = Metrics(layers={"net.1": {"act.dead_frac": 0.9}, "net.3": {"act.dead_frac": 0.1}},
                layer_sites={"net.1": "/m.py:12"})
    _, f = one(tmp_path, body, m, rid="dead-relu")
    assert (f.location.module, f.location.file, f.location.line) == ("net.1", "/m.py", 12)


@pytest.mark.parametrize("extra, words", [
    ("confirmed_by: acc.train_endd > 0.9\n", ["confirmed_by.when", "unknown metric 'acc.train_endd'",
                                              "did you mean 'acc.train_end'"]),
    ("contradicted_by: static.loss_name\n", ["contradicted_by.when: must be a condition"]),
    ("confirmed_by:\n  when: acc.train_end > 0.9\n  note: \"{acc.train_endd}\"\n",
     ["confirmed_by.note", "unknown placeholder {acc.train_endd}"]),
    ("confirmed_by:\n  when: acc.train_end > 0.9\n  because: x\n", ["unknown key 'because'"]),
])
def test_bad_checks_are_load_errors_with_file_and_line(tmp_path, extra, words):
    path = write(tmp_path, "double-softmax", SOFTMAX + extra)
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    text = str(info.value)
    assert text.startswith(f"{path}:"), text
    for w in words:
        assert w in text, text


@pytest.mark.parametrize("location, words", [
    ("static.output_op_att", ["location: unknown metric 'static.output_op_att'", "did you mean"]),
    ("static.saturating_run", ["holds a number", "must be a text metric"]),
    ("static.linear_predecessor", ["per-layer"]),
])
def test_bad_location_is_a_load_error(tmp_path, location, words):
    write(tmp_path, "double-softmax", SOFTMAX.replace("location: static.output_op_at", f"location: {location}"))
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    text = str(info.value)
    assert ":5: location" in text, text  # id, title, symptom, severity, then location
    for w in words:
        assert w in text, text


def test_explain_shows_the_checks_and_what_they_read(tmp_path):
    rule, _ = one(tmp_path, CHECKS, Metrics(scalars=FIRED))
    text = explain(rule)
    assert "Confirmed when" in text and "acc.train_end >= 0.9" in text
    assert "Contradicted when (lowered to info)" in text
    assert "    loss.train_end (train_val)" in text
    assert "Located at the subject in static.output_op_at" in text


def test_the_engine_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, doctor.engine, doctor.engine.evaluate, doctor.engine.explain; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
