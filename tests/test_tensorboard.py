"""TensorBoard both ways: --output-dir writes event files TensorBoard's reader loads; --logdir judges a finished run.

The run logs here are written with TensorBoard's own event-file writer: each is a small synthetic
training run with one known fault (or none), the post-mortem counterpart of fixtures/*.py.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from doctor import curves
from doctor.logdir import role
from doctor.metrics import Metrics, ProbeRecord, ProbeStatus, Series

ROOT = Path(__file__).resolve().parents[1]
STEPS = 400


def doctor(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def write_run(folder: Path, curves_: dict[str, list[tuple[int, float]]], *, tensors: bool = False) -> None:
    """One event file with these scalar curves; TF2 style (scalar tensors) when `tensors`."""
    w = EventFileWriter(str(folder))
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    for tag, points in curves_.items():
        for step, value in points:
            if tensors:
                t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[value],
                                           tensor_shape=tensor_shape_pb2.TensorShapeProto())
                v = summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=t)
            else:
                v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
            w.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[v])))
    w.close()


def train_curve(shape: Callable[[int], float], noise: float = 0.1, seed: int = 0) -> list[tuple[int, float]]:
    """Per-step training loss: the shape times mini-batch noise (log-normal, seeded)."""
    rng = random.Random(seed)
    return [(s, shape(s) * math.exp(rng.gauss(0, noise))) for s in range(STEPS)]


def every(n: int, shape: Callable[[int], float]) -> list[tuple[int, float]]:
    return [(s, shape(s)) for s in range(0, STEPS, n)]


def healthy(s: int) -> float:
    return 2.0 * math.exp(-s / 80) + 0.3


RUNS: dict[str, tuple[dict[str, list[tuple[int, float]]], set[str]]] = {
    "healthy": ({"loss/train": train_curve(healthy),
                 "loss/val": every(25, lambda s: healthy(s) * 1.1),
                 "acc/train": every(25, lambda s: 0.95 - 0.85 * math.exp(-s / 80)),
                 "acc/val": every(25, lambda s: 0.9 - 0.8 * math.exp(-s / 80)),
                 "lr": every(1, lambda s: 1e-3)}, set()),
    # Validation loss turns up at step 150 while the training loss keeps falling.
    "overfitting": ({"train/loss": train_curve(lambda s: 2.0 * math.exp(-s / 60) + 0.02),
                     "val/loss": every(25, lambda s: 1.0 + 0.8 * math.exp(-s / 40) + max(0, s - 150) / 200)},
                    {"overfitting"}),
    # The training loss wanders around ln(10) without going anywhere.
    "plateau": ({"train_loss": train_curve(lambda s: 2.30, noise=0.02)}, {"loss-not-decreasing"}),
    # Falls from 2.5 to 0.5 by step 120, then climbs back to 1.5 and stays there. (A run that ends above
    # where it started is also loss-not-decreasing: both are true of it.)
    "diverging": ({"loss": train_curve(lambda s: 2.0 * math.exp(-s / 30) + 0.5 if s < 120 else
                                       0.5 + 1.0 * min(1.0, (s - 120) / 150), noise=0.05)}, {"loss-diverging"}),
    # The loss becomes NaN at step 250.
    "nan": ({"loss/train": [(s, healthy(s) if s < 250 else math.nan) for s in range(STEPS)]}, {"nan-loss"}),
    # Falls normally but jumps back up to near the start in four places.
    "unstable": ({"loss/train": [(s, v * (5.0 if s in (120, 121, 200, 260, 330) else 1.0))
                                 for s, v in train_curve(healthy, noise=0.05)]}, {"unstable-loss"}),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_logdir_judges_a_finished_run(name: str, tmp_path: Path) -> None:
    logged, expected = RUNS[name]
    write_run(tmp_path, logged)
    proc = doctor("check", "--logdir", tmp_path, "--format", "json", "-q")
    report = json.loads(proc.stdout)
    got = {f["rule"] for f in report["findings"] if f["severity"] in ("error", "warning")}
    assert got == expected, [f["message"] for f in report["findings"]]
    has_error = any(f["severity"] == "error" for f in report["findings"])
    assert proc.returncode == (1 if has_error else 0), proc.stderr
    assert report["errors"] == [] and report["target"] == str(tmp_path)
    assert {p["name"]: p["status"] for p in report["probes"]}["tensorboard_logs"] == "ran"


def test_logdir_finding_says_what_was_read(tmp_path: Path) -> None:
    write_run(tmp_path, RUNS["overfitting"][0])
    text = doctor("check", "--logdir", tmp_path).stdout
    assert "overfitting" in text and "Validation loss rose" in text
    md = doctor("check", "--logdir", tmp_path, "--format", "markdown", "-q").stdout
    assert "▁" in md or "█" in md  # the loss curves as sparklines


def test_keras_style_train_and_validation_folders(tmp_path: Path) -> None:
    epochs = range(0, 40)
    write_run(tmp_path / "train", {"epoch_loss": [(e, 2.0 * math.exp(-e / 8) + 0.05) for e in epochs],
                                   "epoch_accuracy": [(e, 0.5 + e / 90) for e in epochs]})
    write_run(tmp_path / "validation", {"epoch_loss": [(e, 1.0 + 0.6 * math.exp(-e / 5) + max(0, e - 15) / 20)
                                                       for e in epochs],
                                        "epoch_accuracy": [(e, 0.6) for e in epochs]})
    report = json.loads(doctor("check", "--logdir", tmp_path, "--format", "json", "-q").stdout)
    assert [f["rule"] for f in report["findings"]] == ["overfitting"]
    measures = next(p for p in report["probes"] if p["name"] == "tensorboard_logs")["measures"]
    assert "loss.val <- validation/epoch_loss" in measures and "acc.train <- train/epoch_accuracy" in measures


def test_tf2_scalar_tensors_are_read(tmp_path: Path) -> None:
    write_run(tmp_path, {"train/loss": train_curve(lambda s: 2.30, noise=0.02)}, tensors=True)
    report = json.loads(doctor("check", "--logdir", tmp_path, "--format", "json", "-q").stdout)
    assert [f["rule"] for f in report["findings"]] == ["loss-not-decreasing"]


def test_tag_names_people_use() -> None:
    assert role(".", "loss/train") == role(".", "train/loss") == role(".", "Loss/train_epoch") == "loss.train"
    assert role(".", "loss") == role(".", "train_loss_step") == "loss.train"
    assert role(".", "val/loss") == role(".", "eval/loss") == role(".", "loss/validation") == "loss.val"
    assert role("validation", "epoch_loss") == "loss.val"
    assert role(".", "val_accuracy") == role(".", "acc/val") == "acc.val"
    # Components of a loss and other splits are other quantities.
    for tag in ("loss/kl", "train/aux_loss", "test/loss", "lr", "loss/train_eval", "grad_norm/total"):
        assert role(".", tag) is None, tag


@pytest.mark.parametrize("setup,words", [
    (lambda d: None, "no TensorBoard event files"),
    (lambda d: write_run(d, {"lr": [(0, 0.1), (1, 0.1)]}), "no training or validation loss"),
    (lambda d: (write_run(d / "exp1", {"loss": [(0, 1.0)]}), write_run(d / "exp2", {"loss": [(0, 1.0)]})),
     "several runs"),
])
def test_bad_logdir_is_exit_2_with_a_reason(tmp_path: Path, setup, words: str) -> None:
    setup(tmp_path)
    proc = doctor("check", "--logdir", tmp_path)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    assert doctor("check", "--logdir", tmp_path / "absent").returncode == 2
    assert doctor("check", "x.py", "--logdir", tmp_path).returncode == 2


# -- writing ---------------------------------------------------------------------------------------


def saved_metrics(tmp_path: Path) -> Path:
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "train.steps": 60, "init.loss": 2.31, "loss.nonfinite": False,
                      "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {"features.1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64, "grad.norm": 0.02},
                "fc": {"grad.norm": 0.5}}
    m.classes = {"0": {"class.count": 120}, "1": {"class.count": 80}}
    m.series["loss.train"] = Series(x=list(range(1, 61)), y=[2.3 * math.exp(-s / 30) for s in range(1, 61)])
    m.series["loss.val"] = Series(x=[20, 40, 60], y=[1.5, 1.1, 0.9])
    m.series["grad.total_norm"] = Series(x=list(range(1, 61)), y=[1.0] * 60)
    m.series["grad.norm_by_layer"] = Series(x=["features.1", "fc"], y=[0.02, 0.5])
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    path = tmp_path / "metrics.json"
    path.write_text(m.model_dump_json())
    return path


def load(folder: Path) -> ea.EventAccumulator:
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def test_output_dir_writes_conventional_tags_tensorboard_reads(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = doctor("check", "model.py", "--metrics", saved_metrics(tmp_path), "--output-dir", out, "-q")
    assert proc.returncode in (0, 1), proc.stderr
    acc = load(out / "tb")
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "grad_norm/total", "grad_norm/features.1", "grad_norm/fc",
            "act/dead_frac/features.1", "data/class_count/0", "init/loss"} <= tags
    train = acc.Scalars("loss/train")
    assert [e.step for e in train] == list(range(1, 61))
    assert train[0].value == pytest.approx(2.3 * math.exp(-1 / 30), rel=1e-6)
    assert acc.Scalars("act/dead_frac/features.1")[0].value == pytest.approx(0.8)
    assert acc.Scalars("act/dead_frac/features.1")[0].step == 60  # per-layer values at the last step
    (text,) = acc.Tensors("doctor/findings")
    assert b"dead-relu" in text.tensor_proto.string_val[0]
    # A second run into the same folder replaces doctor's events rather than adding a second copy.
    doctor("check", "model.py", "--metrics", saved_metrics(tmp_path), "--output-dir", out, "-q")
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1


def test_neither_direction_imports_torch_or_tensorflow(tmp_path: Path) -> None:
    write_run(tmp_path / "run", RUNS["plateau"][0])
    metrics = saved_metrics(tmp_path)
    code = (
        "import sys; from doctor.cli import main\n"
        f"main(['check', '--logdir', {str(tmp_path / 'run')!r}, '-q', '--format', 'json'])\n"
        f"main(['check', 'model.py', '--metrics', {str(metrics)!r}, '-q', '--output-dir', {str(tmp_path / 'o')!r}])\n"
        "print('torch' in sys.modules, 'tensorflow' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "False False", proc.stderr
    assert (tmp_path / "o" / "tb").is_dir()


@pytest.mark.slow
def test_a_real_check_round_trips_through_tensorboard(tmp_path: Path) -> None:
    """A real training burst's curves, written as events, judged again from the log alone."""
    out = tmp_path / "out"
    proc = doctor("check", "fixtures/overfitting.py", "--budget", "quick", "--output-dir", out, "--format", "json",
                  "-q", timeout=300)
    report = json.loads(proc.stdout)
    assert report["status"] != "failed", proc.stderr
    acc = load(out / "tb")
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "acc/val"} <= tags
    assert any(t.startswith("grad_norm/") and t != "grad_norm/total" for t in tags)
    assert any(t.startswith("act/dead_frac/") for t in tags)
    measured = Metrics.model_validate_json((out / "metrics.json").read_text())
    assert len(acc.Scalars("loss/train")) == len(measured.series["loss.train"].y)
    again = json.loads(doctor("check", "--logdir", out / "tb", "--format", "json", "-q").stdout)
    back = {s["name"] for s in again["probes"] if s["status"] == "ran"}
    assert back == {"tensorboard_logs"} and again["status"] in ("clean", "findings")


def test_curve_statistics_are_shared_with_the_training_burst() -> None:
    src = (ROOT / "doctor" / "collect" / "probes" / "training_burst.py").read_text()
    assert "from doctor import curves" in src and "kendalltau" not in src
    flat = [1.0 + 0.01 * ((-1) ** i) for i in range(60)]
    stats = curves.train_stats(flat)
    assert stats["loss.train_trend_p"] > 0.05 and abs(stats["loss.train_rel_drop"]) < 0.03
    falling = [2.0 * math.exp(-i / 20) for i in range(60)]
    assert curves.train_stats(falling)["loss.train_trend_p"] < 1e-6
    assert curves.spike_stats([1.0] * 60)["run.loss_spikes"] == 0
    assert curves.rise_stats([1.0] * 30 + [2.0] * 30)["run.loss_rise"] == pytest.approx(2.0)
    assert curves.val_stats([1.0, 0.8, 1.2], 0.4) == {
        "loss.val_start": 1.0, "loss.val_end": 1.2, "loss.val_min": 0.8, "loss.val_rise": pytest.approx(1.5),
        "loss.gap_ratio": pytest.approx(3.0)}
    assert curves.train_stats([1.0, math.nan])["loss.nonfinite"] is True

