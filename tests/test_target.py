"""The target-file contract of DESIGN §1, in process: names, value shapes, injection, defaults, synthesis."""

from __future__ import annotations

import sys
from textwrap import dedent
from pathlib import Path

import pytest
import torch
from torch import nn

from doctor.collect import data as datamod
from doctor.collect.budget import BUDGETS
from doctor.collect.context import ForwardError, prepare
from doctor.collect.errors import error_record
from doctor.collect.probes import SkipProbe, registry
from doctor.collect.target import TargetError, load_target
from doctor.metrics import Metrics

QUICK = BUDGETS["quick"]
CPU = torch.device("cpu")
HEAD = "import torch\nfrom torch import nn\nfrom torch.utils.data import DataLoader, Dataset, TensorDataset\n"
MLP = "def build_model():\n    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))\n"
PAIR = "def train_data():\n    return torch.randn(256, 8), torch.randint(0, 3, (256,))\n"


def write(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + dedent(body))
    return path


def load(tmp_path: Path, body: str, factory: str | None = None):
    return load_target(str(write(tmp_path, body)), factory)


def prep(tmp_path: Path, body: str):
    setup = load(tmp_path, body)
    metrics = Metrics()
    return prepare(setup, metrics, QUICK, CPU, 0), metrics


def error_of(tmp_path: Path, body: str, *, prepare_too: bool = False) -> TargetError:
    with pytest.raises(TargetError) as info:
        if prepare_too:
            prep(tmp_path, body)
        else:
            load(tmp_path, body)
    return info.value


def line_of(path: Path, marker: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if marker in text)


# --- importing the file -------------------------------------------------------------------------------------------

def test_import_does_not_run_the_main_block(tmp_path):
    marker = tmp_path / "trained.txt"
    setup = load(tmp_path, MLP + dedent(f"""
        if __name__ == "__main__":
            open({str(marker)!r}, "w").write("trained")
            raise SystemExit("the user's training ran at import")
        """))
    assert isinstance(setup.model, nn.Sequential)
    assert not marker.exists()


def test_sibling_imports_work_as_with_python_model_py(tmp_path):
    (tmp_path / "netlib_for_doctor_test.py").write_text(
        "from torch import nn\ndef make():\n    return nn.Linear(4, 2)\n")
    setup = load(tmp_path, "from netlib_for_doctor_test import make\nbuild_model = make\n")
    assert isinstance(setup.model, nn.Linear)


def test_import_error_points_at_the_users_line(tmp_path):
    path = write(tmp_path, "def helper():\n    raise KeyError('vocab')  # HERE\nhelper()\n")
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    exc = info.value
    assert exc.kind == "load" and isinstance(exc.cause, KeyError)
    rec = error_record(exc.cause, kind=exc.kind, target_file=str(path), what=str(exc))
    assert (rec.file, rec.line) == (str(path), line_of(path, "# HERE"))
    assert "KeyError: 'vocab'" in rec.message and f"{path}:{rec.line}" in rec.message
    assert "Traceback" in rec.traceback  # kept for -v, not in the message


def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "def build_model(:\n    pass\n")
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    rec = error_record(info.value.cause, kind="load", target_file=str(path), what=str(info.value))
    assert isinstance(info.value.cause, SyntaxError)
    assert rec.file == str(path) and rec.line == line_of(path, "def build_model(:")


def test_system_exit_at_import_is_an_error_not_an_exit(tmp_path):
    exc = error_of(tmp_path, "import sys\nsys.exit(4)\n")
    assert isinstance(exc.cause, SystemExit)


def test_missing_file_and_non_python_file(tmp_path):
    with pytest.raises(TargetError, match="no such file"):
        load_target(str(tmp_path / "absent.py"))
    other = tmp_path / "model.txt"
    other.write_text(MLP)
    with pytest.raises(TargetError, match="not an importable Python file"):
        load_target(str(other))


# --- the model ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, found", [
    (MLP, "build_model"),
    ("def get_model():\n    return nn.Linear(8, 3)\n", "get_model"),
    ("model = nn.Linear(8, 3)\n", "model"),
    ("def model():\n    return nn.Linear(8, 3)\n", "model"),
    ("model = lambda: nn.Linear(8, 3)\n", "model"),
])
def test_model_names(tmp_path, body, found):
    setup = load(tmp_path, body)
    assert setup.names["model"] == found
    assert isinstance(setup.model, nn.Module)


def test_model_factory_needing_arguments(tmp_path):
    exc = error_of(tmp_path, "model = nn.Linear\n")
    assert "model asks for an argument 'in_features' that doctor cannot provide" in str(exc)


def test_first_model_name_wins(tmp_path):
    setup = load(tmp_path, "model = nn.Linear(1, 1)\ndef get_model():\n    return nn.Linear(2, 2)\n" + MLP)
    assert setup.names["model"] == "build_model" and isinstance(setup.model, nn.Sequential)


def test_model_class_as_the_model_name(tmp_path):
    setup = load(tmp_path, """
        class Net(nn.Module):
            def __init__(self, width=4):
                super().__init__()
                self.fc = nn.Linear(8, width)
        model = Net
        """)
    assert type(setup.model).__name__ == "Net" and setup.model.fc.out_features == 4


def test_the_lone_module_class_that_builds_with_no_arguments(tmp_path):
    setup = load(tmp_path, """
        from torch.nn import Linear  # imported classes are not the user's
        class Block(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.fc = Linear(dim, dim)
        class Net(nn.Module):
            def __init__(self, dim=8):
                super().__init__()
                self.block = Block(dim)
        """)
    assert setup.names["model"] == "Net" and type(setup.model).__name__ == "Net"


def test_several_buildable_classes_is_a_clear_error(tmp_path):
    exc = error_of(tmp_path, """
        class Small(nn.Module):
            pass
        class Large(nn.Module):
            pass
        """)
    assert exc.kind == "no_model"
    assert "Small" in str(exc) and "Large" in str(exc)
    assert "file.py:ClassName" in exc.hint


def test_no_model_lists_the_names_looked_for(tmp_path):
    exc = error_of(tmp_path, PAIR)
    assert exc.kind == "no_model"
    for name in ("build_model", "get_model", "model", "nn.Module subclass"):
        assert name in str(exc)


def test_factory_named_on_the_command_line(tmp_path):
    body = MLP + "def make_net(device):\n    return nn.Linear(8, 5).to(device)\nclass Other(nn.Module):\n    pass\n"
    setup = load(tmp_path, body, factory="make_net")
    assert setup.names["model"] == "make_net" and setup.model.out_features == 5
    assert type(load(tmp_path, body, factory="Other").model).__name__ == "Other"


@pytest.mark.parametrize("arg, split", [
    ("model.py:make_net", ("model.py", "make_net")),
    ("dir/model.py:Net", ("dir/model.py", "Net")),
    ("model.py", ("model.py", None)),
    ("C:/code/model.py", ("C:/code/model.py", None)),
    ("model.py:", ("model.py:", None)),
])
def test_file_colon_factory_on_the_command_line(arg, split):
    from doctor.cli import _split_target

    assert _split_target(arg) == split


def test_unknown_factory(tmp_path):
    with pytest.raises(TargetError) as info:
        load(tmp_path, MLP, factory="make_nett")
    assert info.value.kind == "no_model" and "make_nett" in str(info.value)


def test_model_name_that_is_not_a_module(tmp_path):
    exc = error_of(tmp_path, "def build_model():\n    return 'resnet18'\n")
    assert "'build_model' gave a str, not an nn.Module" in str(exc)


def test_model_factory_that_raises_points_at_the_user(tmp_path):
    path = write(tmp_path, "def build_model():\n    return nn.Linear(8, -3)  # HERE\n")
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    assert "build_model() failed" in str(info.value)
    rec = error_record(info.value.cause, kind="load", target_file=str(path), what=str(info.value))
    assert rec.line == line_of(path, "# HERE")


# --- injection ----------------------------------------------------------------------------------------------------

def test_injection_by_parameter_name(tmp_path):
    ctx, _ = prep(tmp_path, """
        batch_size = 8
        seen = {}
        def build_model(device, seed):
            seen["model"] = (device, seed)
            return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(device)
        def train_data(batch_size, shuffle=True, *args, **kwargs):  # defaults and varargs are left alone
            seen["data"] = (batch_size, shuffle)
            x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
            return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)
        def optimizer(model, batch_size):
            return torch.optim.SGD(model.parameters(), lr=0.01 * batch_size)
        """)
    recorded = sys.modules["doctor_target_model"].seen  # the target module, as doctor imported it
    assert recorded["model"] == (torch.device("cpu"), 0)
    assert recorded["data"] == (8, True)
    assert ctx.train_batches[0][0].shape == (8, 8)
    assert ctx.metrics.setup.optimizer == "SGD" and ctx.metrics.scalars["setup.lr"] == pytest.approx(0.08)


@pytest.mark.parametrize("body, who", [
    (MLP + "def train_data(root):\n    return torch.randn(4, 8), torch.zeros(4)\n", "train_data"),
    (MLP + PAIR + "def optimizer(model, lr):\n    return torch.optim.SGD(model.parameters(), lr=lr)\n", "optimizer"),
    (MLP + "def example_input(shape):\n    return torch.randn(*shape)\n", "example_input"),
])
def test_a_callable_asking_for_an_unknown_argument(tmp_path, body, who):
    exc = error_of(tmp_path, body, prepare_too=True)
    msg = str(exc)
    assert f"{who} asks for an argument" in msg and "give it a default value" in msg
    assert "batch_size" in msg  # says what doctor can pass


# --- data: names and value shapes ---------------------------------------------------------------------------------

DATASET = """
class Points(Dataset):
    def __init__(self, n=256):
        self.x, self.y = torch.randn(n, 8), torch.randint(0, 3, (n,))
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], self.y[i]
"""

SHAPES = {
    "tensor pair": "{name} = (torch.randn(256, 8), torch.randint(0, 3, (256,)))",
    "list pair": "{name} = [torch.randn(256, 8), torch.randint(0, 3, (256,))]",
    "dataset": DATASET + "{name} = Points()",
    "dataloader": DATASET + "{name} = DataLoader(Points(), batch_size=16)",
    "callable -> pair": "def {name}():\n    return torch.randn(256, 8), torch.randint(0, 3, (256,))",
    "callable -> dataset": DATASET + "def {name}():\n    return Points()",
    "callable -> loader": DATASET + "def {name}(batch_size):\n    return DataLoader(Points(), batch_size=batch_size)",
    "dataset class": DATASET + "{name} = Points",
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", ["train_data", "train_loader", "train_dataset"])
def test_training_data_names_and_shapes(tmp_path, name, shape):
    ctx, _ = prep(tmp_path, MLP + "batch_size = 16\n" + SHAPES[shape].format(name=name) + "\n")
    assert ctx.setup.names["train_data"] == name and not ctx.synthetic
    x, y = ctx.train_batches[0]
    assert x.shape == (16, 8) and y.shape == (16,)
    assert ctx.task == "classification"


@pytest.mark.parametrize("name", ["val_data", "val_loader", "val_dataset"])
@pytest.mark.parametrize("shape", ["tensor pair", "dataloader", "callable -> loader"])
def test_validation_data_names_and_shapes(tmp_path, name, shape):
    ctx, metrics = prep(tmp_path, MLP + PAIR + "batch_size = 16\n" + SHAPES[shape].format(name=name) + "\n")
    assert ctx.setup.names["val_data"] == name
    assert not ctx.val_held_out and len(ctx.val_batches) == QUICK.eval_batches
    assert ctx.val_batches[0][0].shape == (16, 8)
    assert metrics.scalars["setup.has_val_data"] is True


def test_first_data_name_wins(tmp_path):
    setup = load(tmp_path, MLP + PAIR + "train_loader = 'never read'\nval_dataset = 1\nval_loader = 2\n")
    assert setup.names["train_data"] == "train_data" and setup.names["val_data"] == "val_loader"


@pytest.mark.parametrize("value, message", [
    ("42", "train_data is a int; doctor accepts a DataLoader, a Dataset, an (inputs, targets) tensor pair"),
    ("(torch.randn(10, 8), torch.zeros(9))", "inputs have 10 samples but targets have 9"),
    ("(torch.randn(10, 8), torch.zeros(10), torch.ones(10))", "a tuple of (Tensor, Tensor, Tensor)"),
    ("(torch.randn(10, 8).numpy(), torch.zeros(10).numpy())", "a tuple of (ndarray, ndarray)"),
    ("DataLoader([{'a': torch.randn(8), 'b': 0}] * 64, batch_size=8)", "yields dicts with keys"),
    ("DataLoader(TensorDataset(torch.randn(64, 8)), batch_size=8)", "yields a list"),
])
def test_bad_data_values_give_clear_errors(tmp_path, value, message):
    exc = error_of(tmp_path, MLP + f"train_data = {value}\n", prepare_too=True)
    assert message in str(exc)


def test_data_callable_that_raises_points_at_the_user(tmp_path):
    path = write(tmp_path, MLP + "def train_data():\n    raise FileNotFoundError('/data/train.csv')  # HERE\n")
    with pytest.raises(TargetError) as info:
        prepare(load_target(str(path)), Metrics(), QUICK, CPU, 0)
    assert "calling train_data() failed" in str(info.value)
    rec = error_record(info.value.cause, kind="load", target_file=str(path), what=str(info.value))
    assert rec.line == line_of(path, "# HERE")


def test_dataset_item_that_raises_points_at_the_user(tmp_path):
    path = write(tmp_path, MLP + DATASET.replace("return self.x[i], self.y[i]", "return self.x[i], self.z[i]  # HERE")
                 + "train_data = Points()\n")
    with pytest.raises(TargetError) as info:
        prepare(load_target(str(path)), Metrics(), QUICK, CPU, 0)
    assert "reading a batch from train_data failed" in str(info.value)
    rec = error_record(info.value.cause, kind="load", target_file=str(path), what=str(info.value))
    assert rec.line == line_of(path, "# HERE") and "AttributeError" in rec.message


# --- loss, optimizer, batch size, task ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["loss_fn", "criterion"])
def test_loss_names(tmp_path, name):
    ctx, metrics = prep(tmp_path, MLP + PAIR + f"{name} = nn.CrossEntropyLoss(label_smoothing=0.1)\n")
    assert ctx.setup.names["loss"] == name and ctx.loss_fn is ctx.setup.loss_fn
    assert metrics.setup.loss == "CrossEntropyLoss"
    assert not any(d.startswith("loss:") for d in metrics.setup.defaults_used)


def test_loss_as_plain_function(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + PAIR + "def loss_fn(out, y):\n    return nn.functional.cross_entropy(out, y)\n")
    assert metrics.setup.loss == "loss_fn" and ctx.task == "classification"


def test_loss_that_is_not_callable(tmp_path):
    assert "'loss_fn' must be callable" in str(error_of(tmp_path, MLP + "loss_fn = 'cross_entropy'\n"))


def test_loss_returning_a_non_scalar(tmp_path):
    # Not raised: the context comes back marked broken, so the data probes can still run.
    ctx, _ = prep(tmp_path, MLP + PAIR + "loss_fn = nn.CrossEntropyLoss(reduction='none')\n")
    exc = ctx.broken.cause
    assert isinstance(exc, TargetError)
    assert "the loss (CrossEntropyLoss) returned a tensor of shape (32,), not a scalar tensor" in str(exc)
    assert "reduction='mean'" in exc.hint


@pytest.mark.parametrize("name", ["optimizer", "build_optimizer"])
def test_optimizer_names(tmp_path, name):
    ctx, metrics = prep(tmp_path, MLP + PAIR + f"def {name}(model):\n"
                                               "    return torch.optim.SGD(model.parameters(), lr=0.05)\n")
    assert ctx.setup.names["optimizer"] == name
    assert metrics.setup.optimizer == "SGD" and metrics.scalars["setup.lr"] == pytest.approx(0.05)
    assert not any("Adam" in d for d in metrics.setup.defaults_used)


def test_optimizer_instance_is_a_clear_error(tmp_path):
    exc = error_of(tmp_path, "model = nn.Linear(8, 3)\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n")
    assert "is an optimizer instance" in str(exc) and "def optimizer(model)" in exc.hint


def test_optimizer_factory_returning_something_else(tmp_path):
    exc = error_of(tmp_path, MLP + PAIR + "def optimizer(model):\n    return 0.1\n", prepare_too=True)
    assert "returned a float, not a torch.optim.Optimizer" in str(exc)


@pytest.mark.parametrize("value", ["0", "-4", "'32'", "2.5", "True"])
def test_bad_batch_size(tmp_path, value):
    exc = error_of(tmp_path, MLP + f"batch_size = {value}\n")
    assert "batch_size must be a positive int" in str(exc) and value.strip("'") in str(exc)


def test_batch_size_is_used_for_tensors_and_datasets(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + PAIR + "batch_size = 24\n")
    assert ctx.train_batches[0][0].shape[0] == 24 and metrics.setup.batch_size == 24


def test_bad_task(tmp_path):
    exc = error_of(tmp_path, MLP + "task = 'classify'\n")
    assert "task must be one of classification, binary, multilabel, regression" in str(exc) and "classify" in str(exc)


@pytest.mark.parametrize("model_out, targets, task, loss", [
    (3, "torch.randint(0, 3, (256,))", "classification", "CrossEntropyLoss"),
    (1, "torch.randint(0, 2, (256,))", "binary", "BCEWithLogitsLoss"),
    (1, "torch.randint(0, 2, (256, 1)).float()", "binary", "BCEWithLogitsLoss"),
    (5, "torch.randint(0, 2, (256, 5)).float()", "multilabel", "BCEWithLogitsLoss"),
    (1, "torch.randn(256, 1)", "regression", "MSELoss"),
    (4, "torch.randn(256, 4)", "regression", "MSELoss"),
])
def test_task_inference_and_default_loss(tmp_path, model_out, targets, task, loss):
    ctx, metrics = prep(tmp_path, f"""
        def build_model():
            return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {model_out}))
        def train_data():
            return torch.randn(256, 8), {targets}
        """)
    assert ctx.task == task and metrics.setup.task == task and metrics.scalars["setup.task"] == task
    assert metrics.setup.loss == loss
    assert f"loss: {loss} (inferred from the task '{task}')" in metrics.setup.defaults_used
    x, y = ctx.train_batches[0]
    assert ctx.compute_loss(ctx.setup.model(x), y).dim() == 0  # the default loss fits the data


def test_task_given_overrides_inference(tmp_path):
    ctx, metrics = prep(tmp_path, MLP.replace("16, 3", "16, 1") + "task = 'regression'\n"
                        "def train_data():\n    return torch.randn(256, 8), torch.randint(0, 2, (256, 1)).float()\n")
    assert ctx.task == "regression" and metrics.setup.loss == "MSELoss"


def test_defaults_say_adam_was_chosen(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + PAIR)
    adam = [d for d in metrics.setup.defaults_used if d.startswith("optimizer:")]
    assert len(adam) == 1 and "Adam(lr=1e-3)" in adam[0]
    assert metrics.setup.optimizer == "Adam" and metrics.scalars["setup.lr"] == pytest.approx(1e-3)
    assert isinstance(ctx.make_optimizer(ctx.fresh_model()), torch.optim.Adam)


def test_validation_held_out_of_training_data(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + PAIR)  # 256 samples: 8 batches of 32
    assert ctx.val_held_out and len(ctx.val_batches) == QUICK.eval_batches
    assert len(ctx.train_batches) == 8 - QUICK.eval_batches
    held = {tuple(x[0].tolist()) for x, _ in ctx.val_batches}
    trained = {tuple(x[0].tolist()) for x, _ in ctx.train_batches}
    assert not held & trained
    assert any("held out for validation" in n for n in metrics.setup.notes)
    assert metrics.scalars["setup.has_val_data"] is False


def test_too_little_data_to_hold_out(tmp_path):
    ctx, _ = prep(tmp_path, MLP + "train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))\n")
    assert not ctx.val_held_out and ctx.val_batches == [] and len(ctx.train_batches) == 2


# --- custom train_step --------------------------------------------------------------------------------------------

def test_train_step_is_what_the_burst_calls(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + PAIR + dedent("""
        calls = []
        def train_step(model, batch, optimizer, loss_fn):
            x, y = batch
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            calls.append(len(x))
            return loss.item()  # a float is fine too
        """))
    assert ctx.setup.names["train_step"] == "train_step"
    burst = next(p for p in registry() if p.name == "training_burst")
    burst.run(ctx)
    assert ctx.setup.train_step.__globals__["calls"] == [32] * QUICK.train_steps
    assert len(metrics.series["loss.train"].y) == QUICK.train_steps
    assert metrics.scalars["grad.steps"] == QUICK.train_steps


def test_train_step_must_be_callable(tmp_path):
    assert "'train_step' must be callable" in str(error_of(tmp_path, MLP + "train_step = 3\n"))


# --- no data: example_input, then the first layer -----------------------------------------------------------------

def test_example_input_tensor(tmp_path):
    ctx, metrics = prep(tmp_path, MLP + "example_input = torch.randn(5, 8)\n")
    assert ctx.synthetic and ctx.train_batches[0][0].shape == (5, 8)
    assert metrics.scalars["setup.has_train_data"] is False


def test_example_input_callable_gets_batch_size(tmp_path):
    ctx, _ = prep(tmp_path, MLP + "batch_size = 6\ndef example_input(batch_size):\n"
                                  "    return torch.randn(batch_size, 8)\n")
    assert ctx.train_batches[0][0].shape == (6, 8)


def test_example_input_of_the_wrong_type(tmp_path):
    exc = error_of(tmp_path, MLP + "example_input = [1.0] * 8\n", prepare_too=True)
    assert "example_input must be a tensor or return one, got list" in str(exc)


class_LSTM = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(10, 20, batch_first=True)
        self.head = nn.Linear(20, 3)
    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])
"""
class_EMB = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 12)
        self.head = nn.Linear(12, 4)
    def forward(self, ids):
        assert ids.dtype == torch.long and int(ids.max()) < 100
        return self.head(self.emb(ids).mean(1))
"""


@pytest.mark.parametrize("body, shape, outputs", [
    (MLP, (32, 8), 3),
    ("model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))\n",
     (32, 3, 32, 32), 5),
    (class_EMB, (32, 16), 4),
    (class_LSTM, (32, 16, 10), 3),
])
def test_synthesised_input_from_the_first_layer(tmp_path, body, shape, outputs):
    ctx, metrics = prep(tmp_path, body)
    assert ctx.synthetic and tuple(ctx.train_batches[0][0].shape) == shape
    assert ctx.num_outputs == outputs and ctx.task == "classification"
    assert any("synthesised" in n and "data probes are skipped" in n for n in metrics.setup.notes)
    # The data probes say why they did not run; they never pass silently.
    for name in ("data_stats", "init_loss"):
        probe = next(p for p in registry() if p.name == name)
        with pytest.raises(SkipProbe, match="no training data in the target"):
            probe.run(ctx)


def test_no_data_and_no_recognisable_first_layer(tmp_path):
    exc = error_of(tmp_path, "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                             "        self.w = nn.Parameter(torch.zeros(3))\n"
                             "    def forward(self, x):\n        return x * self.w\n", prepare_too=True)
    assert "cannot tell the model's input shape" in str(exc) and "example_input" in exc.hint


def test_synthesised_input_the_model_rejects_says_so(tmp_path):
    # The head is registered first, so the guess from "the first layer" is wrong; the message says it was a guess.
    body = """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(16, 3)
                self.body = nn.Linear(8, 16)
            def forward(self, x):
                return self.head(self.body(x))
        """
    with pytest.raises(ForwardError) as info:
        prep(tmp_path, body)
    assert "synthesised input of shape (32, 16)" in info.value.what and "define example_input" in info.value.what


# --- a forward that raises ----------------------------------------------------------------------------------------

def test_forward_that_raises_keeps_the_data_probes(tmp_path):
    path = write(tmp_path, PAIR + dedent("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 3)
            def forward(self, x):
                return self.fc(x).view(-1, 5)  # HERE
        """))
    metrics = Metrics()
    ctx = prepare(load_target(str(path)), metrics, QUICK, CPU, 0)
    assert ctx.broken is not None and "forward pass on a batch of shape (32, 8) raised" in ctx.broken.what
    rec = error_record(ctx.broken.cause, kind="forward", target_file=str(path), what=ctx.broken.what)
    assert rec.line == line_of(path, "# HERE")
    # The output size is unknown, not zero; the labels 0..2 still make it a classification task.
    assert metrics.scalars["setup.num_outputs"] is None and ctx.task == "classification"
    assert next(p for p in registry() if p.name == "data_stats").run(ctx) is None
    assert metrics.scalars["data.samples"] == 256 and "data.labels_out_of_range" not in metrics.scalars


def test_infer_task_without_an_output_size():
    assert datamod.infer_task(None, torch.tensor([0, 1, 1, 0]), None) == "binary"
    assert datamod.infer_task(None, torch.tensor([0, 2, 1]), None) == "classification"


def test_infer_task_for_a_class_per_position():
    tags = torch.randint(0, 5, (4, 20))  # (N, T) tags against (N, T, 5) scores: sequence tagging
    assert datamod.infer_task(None, tags, 5) == "classification"
    assert datamod.infer_task(None, tags.float(), 20) == "regression"  # (N, T) values against (N, T) outputs
    assert datamod.infer_task(None, torch.randint(0, 9, (4, 20)), 20) == "regression"  # counts per position
