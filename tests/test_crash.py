"""Crash triage: exceptions PyTorch really raises become crash facts, a rule names them, and the run counts as findings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doctor.collect import crash
from doctor.collect.budget import BUDGETS
from doctor.collect.context import last_batch_rows, prepare
from doctor.collect.crash import Call, classify, stage_of
from doctor.collect.target import load_target
from doctor.engine.evaluate import judge, link_consequences
from doctor.engine.loader import load_rules
from doctor.metrics import CATALOGUE, ErrorRecord, Metrics
from doctor.report import Finding, Report, RuleInfo, Severity


def _raised(fn) -> BaseException:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is what the test inspects
        return exc
    raise AssertionError("expected the call to raise")


def _backward_under_no_grad() -> None:
    m = nn.Linear(3, 1)
    with torch.no_grad():
        loss = m(torch.randn(4, 3)).sum()
    loss.backward()


def _inplace_after_sigmoid() -> None:
    h = torch.sigmoid(nn.Linear(3, 3)(torch.randn(4, 3)))
    h += 1
    h.sum().backward()


def _step_then_backward() -> None:
    w = nn.Parameter(torch.randn(3, 3))
    loss = (w ** 2).sum()  # pow saves w itself for its backward
    with torch.no_grad():
        w.add_(1.0)  # what optimizer.step() does to a weight a pending backward still needs
    loss.backward()


def _backward_twice() -> None:
    loss = torch.sigmoid(nn.Linear(3, 3)(torch.randn(4, 3))).sum()
    loss.backward()
    loss.backward()


# (what PyTorch is asked to do, the kind doctor must name, the stage it must read off the traceback)
REAL = [
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))(torch.randn(1, 3)), "batchnorm-single-sample",
     "forward"),
    (lambda: nn.CrossEntropyLoss()(torch.randn(4, 5), torch.randint(0, 5, (4, 1))), "loss-shape-mismatch", "loss"),
    (lambda: nn.CrossEntropyLoss()(torch.randn(4, 5), torch.randint(0, 5, (3,))), "loss-shape-mismatch", "loss"),
    (lambda: nn.MSELoss()(torch.randn(4, 10), torch.randn(4, 3)), "loss-shape-mismatch", "loss"),
    (lambda: nn.BCEWithLogitsLoss()(torch.randn(4, 10), torch.rand(4, 3)), "loss-shape-mismatch", "loss"),
    (lambda: nn.CrossEntropyLoss()(torch.randn(4, 5), torch.tensor([0., 1., 2., 3.])), "target-dtype-mismatch", "loss"),
    (lambda: nn.BCEWithLogitsLoss()(torch.randn(4), torch.randint(0, 2, (4,))), "target-dtype-mismatch", "loss"),
    (lambda: nn.BCELoss()(torch.rand(4), torch.randint(0, 2, (4,))), "target-dtype-mismatch", "loss"),
    (lambda: nn.Linear(3, 4)(torch.randn(4, 3).double()), "input-dtype-mismatch", "forward"),
    (lambda: nn.Conv2d(3, 4, 3)(torch.randn(1, 3, 8, 8).double()), "input-dtype-mismatch", "forward"),
    (lambda: nn.LSTM(3, 4)(torch.randn(2, 1, 3).double()), "input-dtype-mismatch", "forward"),
    (lambda: nn.Embedding(10, 4)(torch.rand(4, 3)), "input-dtype-mismatch", "forward"),
    (lambda: nn.CrossEntropyLoss()(torch.randn(4, 5), torch.tensor([0, 1, 2, 5])), "label-range", "loss"),
    (lambda: F.nll_loss(torch.randn(4, 5), torch.tensor([0, 1, 2, -1])), "label-range", "loss"),
    (lambda: nn.BCELoss()(torch.randn(4), torch.rand(4)), "bce-without-sigmoid", "loss"),
    (_backward_under_no_grad, "loss-without-grad", "backward"),
    (_inplace_after_sigmoid, "inplace-modification", "backward"),
    (_step_then_backward, "inplace-modification", "backward"),
    (_backward_twice, "backward-twice", "backward"),
    (lambda: nn.Linear(3, 3).to("meta")(torch.randn(2, 3)), "device-mismatch", "forward"),
]


@pytest.mark.parametrize("fn,kind,stage", REAL, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(REAL)])
@pytest.mark.filterwarnings("ignore:Using a target size")
def test_real_pytorch_exceptions_are_recognised(fn, kind: str, stage: str) -> None:
    exc = _raised(fn)
    assert stage_of(exc.__traceback__) == stage
    found = classify(exc, Call(), __file__)
    assert found is not None, f"not recognised: {exc}"
    assert found.kind == kind
    assert found.facts["crash.stage"] == stage
    assert found.file == __file__ and found.line  # the deepest frame in the "target" file: this test's line


# The CUDA path cannot run here; these are the messages CUDA builds of PyTorch raise, as users report them.
CUDA = [
    ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! "
     "(when checking argument for argument mat1 in method wrapper_CUDA_addmm)", "forward", "device-mismatch"),
    ("Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same or input should "
     "be a MKLDNN tensor and weight is a dense tensor", "forward", "device-mismatch"),
    ("CUDA error: device-side assert triggered\nCUDA kernel errors might be asynchronously reported",
     "loss", "label-range"),
    ("Input type (torch.DoubleTensor) and weight type (torch.FloatTensor) should be the same", "forward",
     "input-dtype-mismatch"),
]


@pytest.mark.parametrize("text,stage,kind", CUDA, ids=[k for _, _, k in CUDA])
def test_cuda_messages_are_recognised(text: str, stage: str, kind: str) -> None:
    found = classify(RuntimeError(text), Call(stage=stage), __file__)
    assert found is not None and found.kind == kind
    if kind == "device-mismatch" and "cuda:0" in text:
        assert found.facts["crash.devices"] == "cuda:0 and cpu"


def test_a_modified_weight_is_told_from_a_modified_activation() -> None:
    leaf = classify(_raised(_step_then_backward), Call(), __file__).facts
    op = classify(_raised(_inplace_after_sigmoid), Call(), __file__).facts
    assert leaf["crash.inplace_leaf"] is True and leaf["crash.inplace_op"] is None
    assert op["crash.inplace_leaf"] is False and op["crash.inplace_op"] == "Sigmoid"


def test_a_pattern_counts_only_at_its_stage_and_unknown_errors_stay_unknown() -> None:
    shape = RuntimeError("The size of tensor a (10) must match the size of tensor b (3) at non-singleton dimension 1")
    assert classify(shape, Call(stage="loss"), __file__).kind == "loss-shape-mismatch"
    assert classify(shape, Call(stage="forward"), __file__) is None  # a broadcast in the model, not the loss
    assert classify(ValueError("my dataset is broken"), Call(stage="forward"), __file__) is None
    assert classify(_raised(lambda: nn.Linear(5, 3)(torch.randn(4, 3))), Call(), __file__) is None


def test_the_facts_describe_output_and_targets() -> None:
    out, y = torch.randn(8, 5), torch.randint(0, 5, (8, 1))
    exc = _raised(lambda: nn.CrossEntropyLoss()(out, y))
    f = classify(exc, Call(stage="loss", inputs=torch.randn(8, 3), targets=y, output=out,
                           loss_name="CrossEntropyLoss", model=nn.Linear(3, 5)), __file__).facts
    assert f["crash.output_shape"] == "(8, 5)" and f["crash.target_shape"] == "(8, 1)"
    assert f["crash.target_unit_dim"] is True and f["crash.batch_differs"] is False
    assert f["crash.target_integer"] is True and f["crash.param_dtype"] == "float32" and f["crash.batch_rows"] == 8


def test_every_crash_rule_is_a_kind_and_every_kind_is_explained_by_a_rule() -> None:
    rules = {r.id: r for r in load_rules()}
    crash_rules = {rid for rid, r in rules.items() if r.source.parent.name == "crash"}
    kinds = set(crash.KINDS)
    assert crash_rules - {"batchnorm-last-batch-of-one"} <= kinds  # the pre-check rule explains a kind instead
    assert kinds <= set(rules), f"kinds no rule can explain: {sorted(kinds - set(rules))}"
    for kind in kinds:
        if rules[kind].source.parent.name == "crash":
            assert crash.flag(kind) in CATALOGUE


def test_a_run_without_a_crash_passes_the_crash_rules_instead_of_skipping_them() -> None:
    m = Metrics()
    crash.no_crash(m)
    j = judge([r for r in load_rules() if r.source.parent.name == "crash" and r.id != "batchnorm-last-batch-of-one"], m)
    assert not j.findings and not j.skipped and len(j.passed) == 8


def _report(findings: list[Finding], errors: list[ErrorRecord], rules: list[RuleInfo]) -> Report:
    return Report(findings=findings, errors=errors, rules=rules, fail_on="error")


def _finding(rule: str, consequence_of: str | None = None) -> Finding:
    return Finding(rule=rule, symptom="x", severity=Severity.error, message=rule, consequence_of=consequence_of)


def test_an_error_is_explained_by_its_rule_or_by_a_rule_that_explains_that_one() -> None:
    err = ErrorRecord(kind="forward", message="boom", crash="loss-without-grad")
    r = _report([_finding("loss-without-grad")], [err], [])
    r.explain_errors()
    assert err.explained_by == "loss-without-grad" and not r.unexplained_errors()

    err = ErrorRecord(kind="forward", message="boom", crash="label-range")
    r = _report([_finding("single-output-cross-entropy")], [err],
                [RuleInfo(id="single-output-cross-entropy", explains=["label-range"])])
    r.explain_errors()
    assert err.explained_by == "single-output-cross-entropy"

    unknown = ErrorRecord(kind="forward", message="boom")  # no recognised crash: the run failed
    named = ErrorRecord(kind="forward", message="boom", crash="loss-without-grad")  # its rule did not fire
    r = _report([_finding("dead-relu")], [unknown, named], [])
    r.explain_errors()
    assert r.unexplained_errors() == [unknown, named]


def test_consequences_are_shown_under_their_cause_and_counted_once() -> None:
    rules = {r.id: r for r in load_rules()}
    fs = [_finding("detached-output"), _finding("loss-without-grad"), _finding("dead-relu")]
    link_consequences(fs, rules)
    assert [f.consequence_of for f in fs] == [None, "detached-output", None]
    r = _report(fs, [], [])
    assert [f.rule for f in r.headlines()] == ["detached-output", "dead-relu"]
    assert r.counts()["error"] == 2 and len(r.gating()) == 2
    assert [f.rule for f in r.consequences("detached-output")] == ["loss-without-grad"]


def test_explains_must_name_a_known_rule(tmp_path: Path) -> None:
    from doctor.engine.loader import RuleError

    src = (Path(__file__).resolve().parents[1] / "rules/crash/backward-twice.yaml").read_text()
    (tmp_path / "my-rule.yaml").write_text(src.replace("id: backward-twice", "id: my-rule")
                                           .replace("location: crash.subject", "location: crash.subject\n"
                                                                               "explains: [backward-twise]"))
    with pytest.raises(RuleError) as e:
        load_rules([tmp_path])
    assert "unknown rule 'backward-twise'" in str(e.value) and "did you mean 'backward-twice'" in str(e.value)
    assert "my-rule.yaml:" in str(e.value)


def test_last_batch_rows_reads_the_loaders_arithmetic() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(torch.zeros(1025, 2))
    assert last_batch_rows(DataLoader(ds, batch_size=64)) == (1, 1025, 64)
    assert last_batch_rows(DataLoader(ds, batch_size=64, drop_last=True)) == (64, 1025, 64)
    assert last_batch_rows(DataLoader(TensorDataset(torch.zeros(1024, 2)), batch_size=64)) == (64, 1024, 64)
    assert last_batch_rows(DataLoader(ds, batch_sampler=[[0, 1], [2]])) is None
    assert last_batch_rows([(torch.zeros(2), torch.zeros(2))]) is None


def _prepared(tmp_path: Path, body: str):
    path = tmp_path / "target.py"
    path.write_text(textwrap.dedent(body))
    setup = load_target(str(path), None, device="cpu", seed=0)
    metrics = Metrics(target=str(path))
    return prepare(setup, metrics, BUDGETS["quick"], torch.device("cpu"), 0), metrics


def test_batchnorm_layers_that_see_one_value_per_channel_are_found(tmp_path: Path) -> None:
    ctx, m = _prepared(tmp_path, """
        import torch
        from torch import nn
        x = torch.randn(129, 3, 8, 8); y = torch.randint(0, 2, (129,))
        train_data = (x, y)
        batch_size = 64
        def build_model():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    """)
    assert m.scalars["setup.bn_one_value_layers"] == 1 and m.scalars["setup.bn_one_value_at"] == "5"
    assert m.scalars["setup.last_batch_rows"] == 1 and m.scalars["setup.train_samples"] == 129
    assert all(b[0].shape[0] > 1 for b in ctx.train_batches)  # the probes train on the batches that work
    assert any("of one sample left out" in n for n in m.setup.notes)
    assert ctx.broken is None


def test_the_first_backward_is_checked_and_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    ctx, m = _prepared(tmp_path, """
        import torch
        from torch import nn
        train_data = (torch.randn(256, 8), torch.randint(0, 3, (256,)))
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(8, 16); self.fc2 = nn.Linear(16, 3)
            def forward(self, x):
                h = torch.sigmoid(self.fc1(x))
                h *= 2
                return self.fc2(h)
    """)
    assert ctx.broken is not None and ctx.broken.call.stage == "backward"
    found = classify(ctx.broken.cause, ctx.broken.call, str(tmp_path / "target.py"))
    assert found.kind == "inplace-modification" and found.facts["crash.inplace_op"] == "Sigmoid"
    # backward() raises outside the user's code; anomaly mode names the forward op whose saved output was changed
    assert found.file == str(tmp_path / "target.py") and found.line == 10  # h = torch.sigmoid(self.fc1(x))
    assert all(p.grad is None for p in ctx.setup.model.parameters())


def test_fx_tracing_does_not_leave_proxies_in_a_stateful_model() -> None:
    from doctor.collect.static.sites import Sites
    from doctor.collect.static.trace_fx import trace_fx

    class Stateful(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.state = None

        def forward(self, x):
            self.state = self.fc(x)
            self.seen = True
            return self.state

    m = Stateful()
    trace_fx(m, Sites(__file__))
    assert m.state is None and not hasattr(m, "seen")
    m(torch.randn(2, 3))  # a real forward still works
