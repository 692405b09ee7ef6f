"""Shared test helpers: run the real `doctor` command line in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_doctor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m doctor ARGS...` from the repository root; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "doctor", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
