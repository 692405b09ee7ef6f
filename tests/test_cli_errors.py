"""Bad input through the real command line: the right exit code and a clear message, never a traceback.

Each broken target lives in fixtures/broken/ with a header saying what doctor must report for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, run_doctor

BROKEN = REPO / "fixtures" / "broken"
QUICK = ("--budget", "quick")
HANG_TIMEOUT = 30


def no_traceback(r: subprocess.CompletedProcess) -> None:
    text = r.stdout + r.stderr
    assert "Traceback" not in text and 'File "' not in text, text[-2000:]


def check(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_doctor("check", str(BROKEN / name), *QUICK, *args, timeout=timeout)


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["probes"]}


@pytest.fixture(scope="module", autouse=True)
def hang_run():
    """The hanging target runs in a background thread from the start: its time is mostly sleep, so it overlaps."""
    result: dict = {}

    def run() -> None:
        start = time.monotonic()
        try:
            result["run"] = check("hang_in_burst.py", "--timeout", str(HANG_TIMEOUT), "--format", "json", timeout=120)
        finally:
            result["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield thread, result
    thread.join(timeout=120)


# --- usage errors: exit 2, no target run ---------------------------------------------------------------------------

def test_unknown_rule_in_select():
    r = run_doctor("check", str(BROKEN / "no_data.py"), "--select", "no-such-rule", timeout=60)
    assert r.returncode == 2
    assert "unknown rule 'no-such-rule'" in r.stderr and "doctor rules" in r.stderr
    no_traceback(r)


@pytest.mark.parametrize("text, line, words", [
    ("typo in when", 6, "unknown metric 'loss.nonfinit'"),
    ("yaml syntax", 2, "YAML syntax error"),
])
def test_malformed_rule_in_rules_dir(tmp_path, text, line, words):
    path = tmp_path / "my-rule.yaml"
    if text == "typo in when":
        src = (REPO / "rules" / "dynamics" / "nan-loss.yaml").read_text()
        src = src.replace("id: nan-loss", "id: my-rule").replace("when: loss.nonfinite\n", "when: loss.nonfinit\n")
        assert src.splitlines()[line - 1] == "when: loss.nonfinit"
        path.write_text(src)
    else:
        path.write_text("id: [unclosed\n  x: : y\n")
    r = run_doctor("check", str(BROKEN / "no_data.py"), "--rules-dir", str(tmp_path), timeout=60)
    assert r.returncode == 2
    assert f"{path}:{line}" in r.stderr and words in r.stderr
    no_traceback(r)


def test_missing_target_file(tmp_path):
    r = run_doctor("check", str(tmp_path / "nope.py"), *QUICK, timeout=60)
    assert r.returncode == 3
    assert "nope.py" in r.stderr and "no such file" in r.stderr
    no_traceback(r)


# --- the target cannot be loaded: exit 3 ---------------------------------------------------------------------------

def test_no_model_lists_the_names_looked_for():
    r = check("no_model.py")
    assert r.returncode == 3
    out = r.stdout + r.stderr
    assert "no model found" in out
    for name in ("build_model", "get_model", "model", "nn.Module subclass"):
        assert name in out
    no_traceback(r)


def test_import_error_names_file_and_line_and_traceback_only_with_verbose():
    where = f"{(BROKEN / 'import_error.py').relative_to(REPO)}:11"  # shown relative to the working directory
    r = check("import_error.py")
    assert r.returncode == 3
    assert where in r.stdout and "FileNotFoundError" in r.stdout and "importing the target failed" in r.stdout
    no_traceback(r)

    v = check("import_error.py", "-v")
    assert v.returncode == 3 and where in v.stdout
    assert "Traceback (most recent call last)" in v.stdout + v.stderr
    assert f'File "{BROKEN / "import_error.py"}", line 11' in v.stdout + v.stderr


def test_syntax_error_names_file_and_line():
    r = check("syntax_error.py")
    assert r.returncode == 3
    assert f"{(BROKEN / 'syntax_error.py').relative_to(REPO)}:10" in r.stdout and "SyntaxError" in r.stdout
    no_traceback(r)


# --- the target loads but cannot run: exit 3, report still written -------------------------------------------------

def test_forward_raises_writes_every_report_with_the_error(tmp_path):
    out_dir = tmp_path / "out"
    r = check("forward_raises.py", "--output-dir", str(out_dir))
    assert r.returncode == 3
    where = f"{(BROKEN / 'forward_raises.py').relative_to(REPO)}:20"
    assert where in r.stdout and "RuntimeError" in r.stdout and "forward pass" in r.stdout
    assert r.stdout.count(where) == 1, "the error line says where once"
    no_traceback(r)

    report = json.loads((out_dir / "report.json").read_text())
    assert report["status"] == "failed"
    err = report["errors"][0]
    assert err["kind"] == "forward" and err["line"] == 20 and err["file"].endswith("forward_raises.py")
    p = probes(report)
    assert p["static"]["status"] == "ran" and p["data_stats"]["status"] == "ran"  # data probes still ran
    for name in ("init_loss", "gradient_flow", "activation_health", "train_val"):
        assert p[name]["status"] == "skipped" and "forward pass or loss raised" in p[name]["reason"]
    assert not report["findings"], "a broken forward must not produce findings from guessed outputs"
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["errors"][0]["line"] == 20 and len(metrics["probes"]) >= 6
    for name in ("report.html", "report.md"):
        text = (out_dir / name).read_text()
        assert "forward_raises.py" in text and "RuntimeError" in text


def test_loss_returning_a_non_scalar():
    r = check("loss_not_scalar.py")
    assert r.returncode == 3
    assert "the loss (CrossEntropyLoss) returned a tensor of shape (16,), not a scalar tensor" in r.stdout
    assert "reduction='mean'" in r.stdout
    no_traceback(r)


def test_no_data_synthesises_inputs_and_skips_data_probes_with_reasons():
    r = check("no_data.py", "--format", "json")
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    assert report["status"] != "failed" and not report["errors"]
    p = probes(report)
    for name in ("data_stats", "init_loss", "train_val"):
        assert p[name]["status"] == "skipped", p[name]
        assert "no training data in the target" in p[name]["reason"]
    assert p["gradient_flow"]["status"] == "ran"
    assert all(rec["reason"] for rec in report["probes"] if rec["status"] != "ran")
    assert any("synthesised" in n for n in report["setup"]["notes"])


def test_abort_in_a_probe_keeps_what_was_measured():
    t0 = time.monotonic()
    r = check("abort_in_burst.py", "--format", "json")
    assert r.returncode == 3
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in r.stderr and "Fatal Python error" not in r.stderr
    report = json.loads(r.stdout)
    err = report["errors"][-1]
    assert err["kind"] == "crash" and err["probe"] == "training_burst"
    assert "died (SIGABRT)" in err["message"] and "training_burst" in err["message"]
    p = probes(report)
    for name in ("static", "data_stats", "init_loss"):
        assert p[name]["status"] == "ran"
    for name in ("gradient_flow", "activation_health", "train_val"):
        assert p[name]["status"] == "failed" and "SIGABRT" in p[name]["reason"]
    assert "doctor: the collector process died (SIGABRT)" in r.stderr


def test_hang_is_stopped_at_the_timeout_with_a_report(hang_run):
    thread, result = hang_run
    thread.join(timeout=120)
    r = result["run"]
    stdout, stderr = r.stdout, r.stderr
    assert r.returncode == 3, stderr[-2000:]
    assert HANG_TIMEOUT <= result["elapsed"] < HANG_TIMEOUT + 15
    assert "Traceback" not in stderr
    report = json.loads(stdout)
    assert report["status"] == "failed"
    err = report["errors"][-1]
    assert err["kind"] == "timeout" and err["probe"] == "training_burst"
    assert f"within {HANG_TIMEOUT} s while running probe 'training_burst'" in err["message"]
    p = probes(report)
    for name in ("static", "data_stats", "init_loss"):
        assert p[name]["status"] == "ran", p[name]
    for name in ("gradient_flow", "activation_health", "train_val"):
        assert p[name]["status"] == "failed" and "did not finish" in p[name]["reason"]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def test_ctrl_c_stops_the_collector_too():
    """The collector runs in its own session, so Ctrl-C reaches only the parent; the parent must take it down."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", "check", str(BROKEN / "hang_in_burst.py"), *QUICK, "--timeout", "120"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        kids: list[int] = []
        while not kids and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            kids = _children(proc.pid)
        assert kids, "the collector process never started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and "doctor: interrupted" in err
    assert "Traceback" not in err
    assert not any(Path(f"/proc/{k}").exists() for k in kids), "the collector outlived the interrupted parent"


@pytest.mark.parametrize("seed,words", [("99999999999999999999999", "out of range"), ("-1", "out of range"),
                                        ("seven", "not a whole number")])
def test_a_seed_torch_cannot_take_is_a_usage_error(seed, words):
    proc = run_doctor("check", "fixtures/healthy_mlp_regressor.py", "--static", "--seed", seed)
    assert proc.returncode == 2 and "--seed: " in proc.stderr and words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "crash" not in proc.stdout


def test_a_usage_error_takes_down_the_collector_started_early(tmp_path, monkeypatch):
    """The collector starts before the config is read (to import torch meanwhile); a bad config must not leave it."""
    from doctor import runner
    from doctor.cli import main

    started = []

    class Counted(runner.Collector):
        def __init__(self):
            super().__init__()
            started.append((self.child.pid, self.work))

    monkeypatch.setattr(runner, "Collector", Counted)
    bad = tmp_path / "doctor.toml"
    bad.write_text("[tool.doctor\n")
    before = set(_children(os.getpid()))
    rc = main(["check", str(REPO / "fixtures" / "healthy_mlp_regressor.py"), "--config", str(bad)])
    assert rc == 2
    [(pid, work)] = started  # it was started early ...
    assert pid not in set(_children(os.getpid())) - before  # ... then killed and reaped, not left importing torch
    assert not work.exists()


def test_an_unreadable_metrics_document_fails_the_run_instead_of_passing_it_clean(monkeypatch):
    from doctor import runner
    from doctor.collect.spec import METRICS_FILE, CollectSpec

    real = runner._read_json  # noqa: SLF001

    def corrupt(path):
        return {"probes": "not a list"} if path.name == METRICS_FILE else real(path)

    monkeypatch.setattr(runner, "_read_json", corrupt)
    spec = CollectSpec(target=str(REPO / "fixtures" / "healthy_mlp_regressor.py"), static_only=True, device="cpu")
    got = runner.collect(spec, 120)
    assert got.returncode == 0  # the child was fine; what it wrote could not be read
    [err] = got.metrics.errors
    assert err.kind == "internal" and "metrics document could not be read" in err.message


def test_a_collector_dying_while_importing_torch_says_so(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os\nos.abort()\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "doctor", "check", "fixtures/healthy_mlp_regressor.py", "--static"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "died (SIGABRT) while starting (importing torch)" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr


def test_unwritable_output_dir_and_undecodable_files_are_one_sentence(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\xff\xfe{}")
    cases = {
        ("--output-dir", str(blocker)): "cannot write the reports there",
        ("--baseline", str(bad)): "not UTF-8 text",
        ("--config", str(bad)): "not UTF-8",
    }
    for flags, words in cases.items():
        r = run_doctor("check", str(BROKEN.parent / "dead_relu.py"), "--static", "-q", *flags, timeout=60)
        assert r.returncode == 2, (flags, r.stderr[-1000:])
        assert words in r.stderr, (flags, r.stderr[-1000:])
        no_traceback(r)
