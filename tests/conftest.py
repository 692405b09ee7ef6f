"""Shared test helpers: run the real `doctor` command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers already keep every core busy; a second layer of OpenMP threads per doctor run
    # oversubscribes them, and spinning OpenMP threads then slow each run several-fold.
    # Inherited by the doctor subprocesses the tests start.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_doctor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m doctor ARGS...` from the repository root; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the markers into group names
def pytest_collection_modifyitems(items) -> None:
    """Under pytest-xdist, keep each test module on one worker, except the per-fixture checks.

    Several modules share a module-scoped doctor run between their tests; split across workers,
    each worker would run it again. test_fixtures.py and test_verify.py have no shared state, so their checks spread.
    """
    for item in items:
        if item.path.name not in ("test_fixtures.py", "test_verify.py"):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
