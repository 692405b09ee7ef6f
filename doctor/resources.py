"""Where the built-in rules and report templates live, installed or in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package_dir(name: str) -> Path:
    # `rules/` and `reports/` sit at the top of the repository and are mapped into the
    # installed package as doctor.rules / doctor.reports (see pyproject.toml).
    return Path(str(resources.files(name)))


def rules_dir() -> Path:
    """The directory of built-in YAML rules."""
    return _package_dir("doctor.rules")


def reports_dir() -> Path:
    """The directory of Jinja report templates and their CSS."""
    return _package_dir("doctor.reports")
