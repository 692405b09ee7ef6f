"""Static analysis of structure faults: every structure rule fires on its fixture and nowhere else,
findings point at the user's line, and real architectures come out clean (in process, one batch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from test_static_support import FIXTURES, STRUCTURE_RULES, findings, header, rules, static_metrics

STRUCTURE_FIXTURES = sorted(FIXTURES.glob("structure_*.py"))
HEALTHY = sorted(FIXTURES.glob("healthy_*.py")) + sorted(p for p in STRUCTURE_FIXTURES if "healthy" in p.stem)


@pytest.mark.parametrize("path", STRUCTURE_FIXTURES, ids=lambda p: p.stem)
def test_structure_fixture_fires_exactly_its_structure_rules(path: Path) -> None:
    expected, info = header(path)
    m = static_metrics(path)
    got = {f.rule for f in findings(m) if f.rule in STRUCTURE_RULES}
    assert got == expected & STRUCTURE_RULES, [(f.rule, f.message) for f in findings(m)]
    infos = {f.rule for f in findings(m, gating=False) if f.severity.value == "info" and f.rule in STRUCTURE_RULES}
    assert infos == info


@pytest.mark.parametrize("path", HEALTHY, ids=lambda p: p.stem)
def test_healthy_fixtures_have_no_structure_warnings(path: Path) -> None:
    m = static_metrics(path)
    assert [(f.rule, f.message) for f in findings(m)] == []


def test_every_structure_rule_has_a_firing_fixture() -> None:
    fired: set[str] = set()
    for path in STRUCTURE_FIXTURES:
        expected, info = header(path)
        fired |= expected | info
    assert STRUCTURE_RULES <= fired, sorted(STRUCTURE_RULES - fired)
    assert {r.id for r in rules() if r.source.parent.name == "structure"} == STRUCTURE_RULES


def test_every_static_finding_points_at_the_users_line() -> None:
    """Each structure finding names a subject and a file:line inside the fixture that caused it."""
    for path in STRUCTURE_FIXTURES:
        m = static_metrics(path)
        for f in findings(m, gating=False):
            if f.rule not in STRUCTURE_RULES:
                continue
            assert f.location.module, (path.name, f.rule)
            assert f.location.file == str(path) and f.location.line, (path.name, f.rule, f.location)
            line = path.read_text().splitlines()[f.location.line - 1]
            assert line.strip() and not line.lstrip().startswith("#"), (path.name, f.rule, line)


def test_locations_are_the_lines_that_build_the_offending_layer_or_make_the_call() -> None:
    def where(name: str, rule: str) -> tuple[str, str]:
        path = FIXTURES / name
        [f] = [f for f in findings(static_metrics(path), gating=False) if f.rule == rule]
        return f.location.module, path.read_text().splitlines()[f.location.line - 1].strip()

    module, line = where("structure_unregistered_modules.py", "unregistered-modules")
    assert module == "hidden[0]" and line.startswith("self.hidden = [nn.Linear(64, 64)")
    module, line = where("structure_softmax_over_batch.py", "softmax-over-batch")
    assert module == "F.log_softmax in Net.forward" and "F.log_softmax(self.body(x), dim=0)" in line
    module, line = where("structure_functional_dropout.py", "functional-dropout-always-on")
    assert module == "F.dropout in Net.forward" and "F.dropout(" in line
    module, line = where("structure_params_not_in_optimizer.py", "params-not-in-optimizer")
    assert module == "head" and line == "self.head = nn.Linear(64, 4)"
    module, line = where("structure_train_step.py", "clip-after-step")
    assert "clip_grad_norm_" in module and line.startswith("torch.nn.utils.clip_grad_norm_(")
    module, line = where("structure_hyperparameters.py", "scheduler-drives-lr-to-zero")
    assert "StepLR(" in line
    module, line = where("structure_detached_output.py", "detached-output")
    assert module == ".detach() in Net.forward" and "self.body(x).detach()" in line


def test_layer_sites_cover_every_module_built_in_the_target() -> None:
    m = static_metrics(FIXTURES / "structure_params_not_in_optimizer.py")
    lines = (FIXTURES / "structure_params_not_in_optimizer.py").read_text().splitlines()
    for path, text in (("encoder", "self.encoder = nn.Sequential("), ("encoder.0", "self.encoder = nn.Sequential("),
                       ("head", "self.head = nn.Linear(64, 4)")):
        file, line = m.layer_sites[path].rsplit(":", 1)
        assert lines[int(line) - 1].strip().startswith(text), (path, lines[int(line) - 1])


def test_static_findings_are_medium_confidence_until_a_probe_confirms_them() -> None:
    m = static_metrics(FIXTURES / "structure_double_softmax.py")
    [f] = [f for f in findings(m) if f.rule == "double-softmax"]
    assert f.confidence == "medium" and f.severity.value == "warning"
    assert "acc.train_end was not measured" in f.notes[0]
    # a definite static fact with no dynamic check stays high
    m = static_metrics(FIXTURES / "structure_unregistered_modules.py")
    [f] = [f for f in findings(m) if f.rule == "unregistered-modules"]
    assert f.confidence == "high" and f.notes == []


def test_double_softmax_confirmed_and_contradicted_by_the_training_burst() -> None:
    from doctor.engine import judge

    m = static_metrics(FIXTURES / "structure_double_softmax.py")
    floor = m.scalars["static.softmax_loss_floor"]
    assert floor == pytest.approx(0.7437, abs=1e-3)  # ln(1 + 3/e) for 4 classes
    m.scalars.update({"acc.train_end": 0.98, "loss.train_end": floor * 1.05})
    [f] = [f for f in judge(rules(), m).findings if f.rule == "double-softmax"]
    assert f.confidence == "high" and f.severity.value == "warning" and "98%" in f.notes[0]
    m.scalars.update({"loss.train_end": 0.1})
    [f] = [f for f in judge(rules(), m).findings if f.rule == "double-softmax"]
    assert f.confidence == "low" and f.severity.value == "info" and "Lowered from warning to info" in f.notes[0]


def _write(tmp_path: Path, body: str, name: str = "target.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


TRACE_FAILS = '''
import torch
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        if h.sum() > 0:          # data-dependent control flow: torch.fx cannot trace this
            h = h * 2
        return torch.softmax(self.fc2(h), dim=1)

def build_model():
    return Net()

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
loss_fn = nn.CrossEntropyLoss()
'''


def test_untraceable_model_falls_back_to_a_recorded_forward_pass(tmp_path: Path) -> None:
    path = _write(tmp_path, TRACE_FAILS)
    m = static_metrics(path)
    assert m.scalars["static.graph"] == "hooked"
    [note] = [n for n in m.setup.notes if "torch.fx could not trace" in n]
    assert "one recorded forward pass instead" in note and f"{path}:14" in note
    [f] = [f for f in findings(m) if f.rule == "double-softmax"]
    assert f.location.module == "torch.softmax in Net.forward" and f.location.line == 16


def test_recorded_forward_sees_functional_calls_in_order() -> None:
    from doctor.collect.static.sites import Sites
    from doctor.collect.static.trace_hooked import trace_hooked

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            h = torch.sigmoid(self.fc(x)).detach()
            return torch.nn.functional.softmax(h, dim=-1)

    g = trace_hooked(Net(), torch.randn(3, 4), Sites(__file__))
    names = [(op.kind, op.label) for op in g.ops]
    assert names == [("input", "input"), ("module", "fc"), ("function", "torch.sigmoid"), ("method", ".detach()"),
                     ("function", "F.softmax")]
    assert [op.inputs for op in g.ops[1:]] == [(0,), (1,), (2,), (3,)]
    assert g.output == 4 and g.ops[4].dim == -1
    assert all(op.site and op.site.startswith(__file__) for op in g.ops[2:])


def test_static_analysis_leaves_the_model_as_it_found_it() -> None:
    from doctor.collect.static.analysis import Analysis, StaticInputs
    from doctor.collect.static.checks import run_checks
    from doctor.collect.static.sites import Sites

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(32, 8) * 3 + 1, torch.randint(0, 3, (32,))
    rng = torch.get_rng_state()
    a = Analysis(StaticInputs(model=model, target=__file__, sites=Sites(__file__), x=x, y=y, real_targets=True,
                              loss_fn=torch.nn.CrossEntropyLoss(),
                              make_optimizer=lambda m: torch.optim.Adam(m.parameters())))
    facts = run_checks(a)
    assert facts.scalars["static.graph"] == "fx" and facts.scalars["static.output_op"] == "layer"
    assert not model.training and all(not m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm stats untouched
    assert torch.equal(rng, torch.get_rng_state())


DICT_OUTPUT = '''
import torch
from torch import nn

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.body(x)
        if x.shape[0] > 0:           # also makes torch.fx give up: the recorded pass must pick the same output
            pass
        return {"hidden": h, "logits": self.head(h)}

def build_model():
    return Tagger()

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
'''


@pytest.mark.parametrize("traceable", [True, False])
def test_a_dict_output_is_read_at_its_logits_like_the_probes_do(tmp_path: Path, traceable: bool) -> None:
    body = DICT_OUTPUT if not traceable else DICT_OUTPUT.replace("if x.shape[0] > 0:", "if True:")
    m = static_metrics(_write(tmp_path, body))
    assert m.scalars["static.graph"] == ("fx" if traceable else "hooked")
    assert m.scalars["static.output_op"] == "layer" and m.scalars["static.output_op_at"] == "head"
    assert findings(m) == []


TINY_VIT = "torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, " \
           "hidden_dim=32, mlp_dim=64, num_classes=10)"


@pytest.mark.parametrize("build", [
    "torchvision.models.resnet18(num_classes=10)",
    "torchvision.models.mobilenet_v3_small(num_classes=10)",
    "torchvision.models.shufflenet_v2_x0_5(num_classes=10)",
    TINY_VIT,
], ids=["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "vit"])
def test_torchvision_classifiers_are_clean(tmp_path: Path, build: str) -> None:
    path = _write(tmp_path, f'''
import torch, torchvision
from torch import nn

batch_size = 8

def build_model():
    return {build}

def train_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)

loss_fn = nn.CrossEntropyLoss()

def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
''')
    m = static_metrics(path)
    assert m.scalars["static.graph"] == "fx", m.setup.notes
    assert m.scalars["static.output_op"] == "layer" and m.scalars["static.loss_kind"] == "cross_entropy"
    assert [(f.rule, f.message) for f in findings(m)] == []
    # every layer points at the one line of the target that built the model
    layers = {k: v for k, v in m.layer_sites.items() if k in m.layer_types}
    assert len(layers) == len(m.layer_types) and set(layers.values()) == {f"{path}:8"}
    assert m.layer_sites["optimizer()"] == f"{path}:17"  # where the optimizer is built


SYNC_AND_LAZY_BN = '''
import torch
from torch import nn

batch_size = 2

def build_model():
    return nn.Sequential(nn.Linear(8, 16), nn.{norm}(16) if "{norm}" != "LazyBatchNorm1d" else nn.LazyBatchNorm1d(),
                         nn.ReLU(), nn.Linear(16, 3))

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
'''


@pytest.mark.parametrize("norm", ["BatchNorm1d", "SyncBatchNorm", "LazyBatchNorm1d"])
def test_every_batchnorm_kind_is_recognised(tmp_path: Path, norm: str) -> None:
    """By type, not by name: SyncBatchNorm and the lazy ones are BatchNorm too (a bias before them is redundant,
    and a batch of two gives them noisy statistics)."""
    m = static_metrics(_write(tmp_path, SYNC_AND_LAZY_BN.format(norm=norm)))
    assert m.scalars["static.batchnorm_at"] == "1"
    assert m.scalars["static.bias_before_batchnorm"] == 1
    assert {"redundant-bias", "batchnorm-small-batch"} <= {f.rule for f in findings(m, gating=False)}
