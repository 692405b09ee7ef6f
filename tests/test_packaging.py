"""A non-editable install ships the built-in rules and report templates inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_finds_rules_and_templates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("doctor-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for rule in (ROOT / "rules").rglob("*.yaml"):
        assert f"doctor/rules/{rule.relative_to(ROOT / 'rules').as_posix()}" in names
    for tpl in list((ROOT / "reports").rglob("*.j2")) + list((ROOT / "reports").rglob("*.css")):
        assert f"doctor/reports/{tpl.relative_to(ROOT / 'reports').as_posix()}" in names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import doctor, doctor.resources as r; from doctor.engine.loader import load_rules; "
            "print(doctor.__file__); print(r.rules_dir()); print(len(load_rules())); "
            "print((r.reports_dir() / 'html' / 'report.html.j2').is_file())")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    where, rules_dir, count, template = out.stdout.split()
    assert where.startswith(str(site)) and rules_dir.startswith(str(site))
    assert int(count) == len(list((ROOT / "rules").rglob("*.yaml")))
    assert template == "True"
