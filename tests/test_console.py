"""Console manners: machine output on stdout only, people's on stderr; progress and colour only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from doctor.metrics import Metrics, ProbeRecord, ProbeStatus

ROOT = Path(__file__).resolve().parents[1]
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and bold codes
FIXTURE = "fixtures/healthy_mlp_classifier.py"


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    e.update(extra)
    return e


def doctor(*args, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=env(**extra), stdin=subprocess.DEVNULL)


def on_terminal(*args, **extra: str) -> str:
    """Run doctor with stdout and stderr on a pseudo-terminal; return everything it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "doctor", *map(str, args)], cwd=ROOT, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env(**extra))
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 180)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    m = Metrics(target="model.py")
    m.scalars.update({"setup.lr": 1e-3, "data.input_nonfinite_frac": 0.0, "data.target_nonfinite_frac": 0.0})
    m.layers = {"1": {"act.kind": "relu", "act.dead_frac": 0.8, "act.units": 64}}
    m.probes = [ProbeRecord(name="data_stats", status=ProbeStatus.ran)]
    path = tmp_path_factory.mktemp("console") / "metrics.json"
    path.write_text(m.model_dump_json())
    return path


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "github", "markdown", "html"])
def test_machine_output_on_stdout_only_and_people_on_stderr(saved: Path, fmt: str) -> None:
    proc = doctor("check", "model.py", "--metrics", saved, "--format", fmt)
    out = proc.stdout
    if fmt in ("json", "sarif"):
        json.loads(out)
    elif fmt == "junit":
        ET.fromstring(out)
    elif fmt == "github":
        assert all(line.startswith("::") for line in out.splitlines()) and out
    verdict = "doctor: clean: 0 errors, 1 warnings, 0 info"
    assert verdict in proc.stderr.splitlines() and verdict not in out
    assert not SGR.search(out) and not SGR.search(proc.stderr)  # neither stream is a terminal here


def test_quiet_leaves_stderr_empty_and_errors_still_show(saved: Path) -> None:
    proc = doctor("check", "model.py", "--metrics", saved, "--format", "json", "-q")
    assert proc.returncode == 0 and proc.stderr == ""
    bad = doctor("check", "model.py", "--metrics", saved, "-q", "--select", "nope")
    assert bad.returncode == 2 and "unknown rule 'nope'" in bad.stderr


def test_no_progress_when_not_on_a_terminal_unless_verbose() -> None:
    plain = doctor("check", FIXTURE, "--static", "--format", "json")
    assert plain.returncode == 0, plain.stderr
    assert " ..." not in plain.stderr and "\r" not in plain.stderr
    verbose = doctor("check", FIXTURE, "--static", "--format", "json", "-v")
    assert "doctor: static ..." in verbose.stderr.splitlines()
    json.loads(verbose.stdout)  # -v adds to stderr only


def test_on_a_terminal_progress_rewrites_one_line() -> None:
    shown = on_terminal("check", FIXTURE, "--static")
    assert "\r\x1b[K" in shown and "doctor: static ..." in shown  # one progress line, rewritten in place
    assert SGR.search(shown)  # the text report is coloured on a terminal


def test_on_a_terminal_colour_follows_no_color(saved: Path) -> None:
    assert SGR.search(on_terminal("check", "model.py", "--metrics", saved))
    assert not SGR.search(on_terminal("check", "model.py", "--metrics", saved, NO_COLOR="1"))
    # Machine output stays plain even on a terminal, and -q leaves only it.
    quiet = on_terminal("check", "model.py", "--metrics", saved, "-q", "--format", "json")
    assert not SGR.search(quiet) and json.loads(quiet)["status"] == "clean"


def test_verbose_and_quiet_do_not_mix() -> None:
    proc = doctor("check", FIXTURE, "-q", "-v")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
