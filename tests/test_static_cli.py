"""`doctor check --static` end to end: no training, located findings, and bad input that still gets its static checks."""

from __future__ import annotations

import json
import py_compile
import textwrap
from pathlib import Path

from conftest import REPO, run_doctor


def check_static(target: Path, *args: str) -> tuple[int, dict]:
    proc = run_doctor("check", str(target), "--static", "--format", "json", "-q", *args)
    assert proc.stdout, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["probes"]}


def test_static_run_trains_nothing_and_locates_the_finding() -> None:
    fixture = REPO / "fixtures" / "structure_double_softmax.py"
    rc, report = check_static(fixture)
    assert rc == 0 and report["status"] == "clean"  # a warning does not fail at the default --fail-on error
    [f] = report["findings"]
    assert f["rule"] == "double-softmax" and f["severity"] == "warning" and f["confidence"] == "medium"
    assert f["location"]["module"] == "3" and f["location"]["file"] == str(fixture)
    line = fixture.read_text().splitlines()[f["location"]["line"] - 1]
    assert "nn.Softmax(dim=1)" in line
    assert "not measured" in f["notes"][0] and "--static" in f["notes"][0]
    p = probes(report)
    assert p["static"]["status"] == "ran"
    assert {"train_val", "gradient_flow", "init_loss", "data_stats"} <= set(p)
    assert all(v["status"] == "skipped" and v["reason"] == "--static" for k, v in p.items() if k != "static")
    assert any("--static" in n for n in report["setup"]["notes"])


KWARGS = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)
        nn.init.constant_(self.fc1.weight, 0.5)

    def forward(self, x, mask):          # needs a second argument doctor does not have
        return self.fc2(torch.relu(self.fc1(x)) * mask)

def build_model():
    return Net()

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
'''


def test_forward_needing_more_arguments_is_explained_and_tree_checks_still_run(tmp_path: Path) -> None:
    target = tmp_path / "needs_mask.py"
    target.write_text(KWARGS)
    rc, report = check_static(target)
    assert rc == 3 and report["status"] == "failed"
    [err] = report["errors"]
    assert "forward pass" in err["message"] and "mask" in err["message"]
    notes = " ".join(report["setup"]["notes"])
    assert "need arguments besides the input" in notes
    assert probes(report)["static"]["status"] == "ran"
    rules = {f["rule"] for f in report["findings"]}
    assert "constant-weight-init" in rules  # from the module tree, which needs no forward pass


def test_model_without_parameters_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "no_params.py"
    target.write_text("from torch import nn\n\ndef build_model():\n    return nn.Sequential(nn.ReLU(), nn.Identity())\n")
    rc, report = check_static(target)
    assert rc == 3
    [err] = report["errors"]
    assert err["message"] == "the model has no parameters: there is nothing to train"
    assert "nn.ModuleList" in err["hint"]
    assert probes(report)["static"]["status"] == "ran"


LIST_ONLY = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

def build_model():
    return Net()

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
'''


def test_layers_only_in_a_list_leave_no_parameters_and_the_static_finding_says_why(tmp_path: Path) -> None:
    target = tmp_path / "list_only.py"
    target.write_text(LIST_ONLY)
    rc, report = check_static(target)
    assert rc == 3 and report["errors"][0]["message"].startswith("the model has no parameters")
    [f] = [f for f in report["findings"] if f["rule"] == "unregistered-modules"]
    assert f["severity"] == "error" and f["location"]["module"] == "layers[0]" and f["location"]["line"] == 8


SOURCELESS = '''
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))

train_data = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
loss_fn = nn.CrossEntropyLoss()
'''


def test_target_without_source_skips_only_the_source_checks(tmp_path: Path) -> None:
    src = tmp_path / "model_src.py"
    src.write_text(SOURCELESS)
    compiled = tmp_path / "model.pyc"
    py_compile.compile(str(src), cfile=str(compiled), doraise=True)
    src.unlink()
    rc, report = check_static(compiled)
    assert rc == 0, report["errors"]
    notes = " ".join(report["setup"]["notes"])
    assert "the source of the target is unavailable" in notes and "not a Python source file" in notes
    assert [f["rule"] for f in report["findings"]] == ["double-softmax"]  # the graph checks still ran


def test_a_clean_static_run_of_a_real_architecture(tmp_path: Path) -> None:
    target = tmp_path / "resnet.py"
    target.write_text(textwrap.dedent('''\
        import torch, torchvision

        def build_model():
            return torchvision.models.resnet18(num_classes=10)

        example_input = torch.randn(4, 3, 32, 32)
    '''))
    rc, report = check_static(target, "--fail-on", "info")
    assert rc == 0 and report["status"] == "clean" and report["findings"] == [], report["findings"]


def test_torchvision_does_not_pull_in_dynamo_and_roi_align_still_works(tmp_path: Path) -> None:
    """torchvision imports torch._dynamo (1.5 s) for one helper; under --static it gets a stand-in that loads it
    on first call. Importing must not load dynamo, and calling the op must still give the real answer."""
    seen = tmp_path / "seen.json"
    target = tmp_path / "detector_head.py"
    target.write_text(textwrap.dedent(f'''\
        import json, sys
        import torch, torchvision
        from torch import nn

        AT_IMPORT = "torch._dynamo" in sys.modules

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3 * 2 * 2, 5)

            def forward(self, x):
                boxes = torch.tensor([[float(i), 0.0, 0.0, 3.0, 3.0] for i in range(x.shape[0])])
                return self.fc(torchvision.ops.roi_align(x, boxes, 2).flatten(1))

        def build_model():
            x = torch.arange(16.0).reshape(1, 1, 4, 4)
            pooled = torchvision.ops.roi_align(x, torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), 1, aligned=True)
            # The name roi_align calls (on CPU only without torchvision's compiled ops): the stand-in must
            # answer what torch's helper answers, and leave the real module importable.
            stand_in = sys.modules["torchvision.ops.roi_align"].is_compile_supported
            answer = stand_in("cpu")
            import torch._dynamo.utils as real
            json.dump({{"at_import": AT_IMPORT, "pooled": pooled.item(), "stand_in": stand_in.__module__,
                       "same_answer": answer == real.is_compile_supported("cpu"),
                       "real": real.__file__.endswith("utils.py")}}, open({str(seen)!r}, "w"))
            return Head()

        example_input = torch.randn(2, 3, 8, 8)
    '''))
    rc, report = check_static(target, "--fail-on", "info")
    assert rc == 0 and report["findings"] == [], (report["findings"], report["errors"])
    got = json.loads(seen.read_text())
    assert got["at_import"] is False  # the 1.5 s were saved
    # aligned=True samples at pixel centres: the box (0,0)-(3,3) pools around (1,1) of the ramp, 4*1 + 1
    assert got["pooled"] == 5.0
    assert got["stand_in"] == "doctor.collect.static.light" and got["same_answer"] is True and got["real"] is True


TINY_MODEL = """
def build_model():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

example_input = torch.randn(4, 4)
"""


def tiny_target(tmp_path: Path, prelude: str) -> Path:
    """A target file: `prelude` (its imports and whatever the test is about), then a tiny MLP and its example input."""
    target = tmp_path / "model.py"
    target.write_text("import torch\nfrom torch import nn\n" + textwrap.dedent(prelude) + TINY_MODEL)
    return target


def test_exit_handlers_of_the_target_still_run(tmp_path: Path) -> None:
    """The collector skips torch's slow module teardown at exit, but not the exit handlers (the user's among them)."""
    mark = tmp_path / "atexit.txt"
    target = tiny_target(tmp_path, f'''
        import atexit, pathlib
        atexit.register(pathlib.Path({str(mark)!r}).write_text, "ran")
    ''')
    rc, _ = check_static(target)
    assert rc == 0
    assert mark.read_text() == "ran"


def test_threads_the_target_leaves_running_are_joined_before_exit(tmp_path: Path) -> None:
    """Skipping the module teardown must not kill a non-daemon thread mid-work (a normal exit joins it)."""
    mark = tmp_path / "thread.txt"
    target = tiny_target(tmp_path, f'''
        import pathlib, threading, time

        def slow_write():
            time.sleep(1.0)
            pathlib.Path({str(mark)!r}).write_text("done")

        threading.Thread(target=slow_write).start()  # left running when the collector is done
    ''')
    rc, _ = check_static(target)
    assert rc == 0
    assert mark.read_text() == "done"


def test_a_target_reading_stdin_gets_end_of_file_not_the_parents_pipe(tmp_path: Path) -> None:
    """The collector gets its go-ahead on stdin; the user's code reading stdin must get end-of-file, not wait."""
    target = tiny_target(tmp_path, '''
        try:
            ANSWER = input("continue? ")
        except EOFError:
            ANSWER = "eof"
        assert ANSWER == "eof", ANSWER
    ''')
    rc, report = check_static(target)
    assert rc == 0 and report["errors"] == [], report["errors"]
