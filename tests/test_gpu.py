"""On a machine with CUDA: `--device cuda` (and `auto`) run every probe there. Deselected by default
(`-m 'not gpu'` in pyproject.toml); run with `pytest -m gpu` on a GPU machine."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, run_doctor

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_probes_run_on_cuda(device):
    r = run_doctor("check", REPO / "fixtures" / "healthy_mlp_classifier.py", "--device", device, "--format", "json",
                   "-q", timeout=300)
    assert r.stdout, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["setup"]["device"].startswith("cuda"), report["setup"]
    assert not report["errors"], report["errors"]
    status = {p["name"]: p["status"] for p in report["probes"]}
    assert {"data_stats", "data_leakage", "data_shift", "data_pipeline", "init_loss", "gradient_flow",
            "train_val"} <= {n for n, s in status.items() if s == "ran"}, status
    assert not [n for n, s in status.items() if s == "failed"], status
    assert report["status"] == "clean", report["findings"]


def test_oom_retry_on_cuda():
    r = run_doctor("check", REPO / "fixtures" / "bad_oom.py", "--device", "cuda", "--budget", "quick", "--format",
                   "json", "-q", timeout=300)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and not report["errors"], report["errors"]
    assert any("Out of device memory" in n for n in report["setup"]["notes"])
