"""The Lightning and Hugging Face adapters of doctor.watch, through the runnable examples (both packages are in
the `test` extra, so these run wherever the suite does)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "watch"


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"watch_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lightning_healthy_fit_is_clean(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = example("lightning_fit").main([])
    assert doc.monitor.steps == 300 and doc.monitor.findings == [] and doc.halted is None
    assert doc.monitor.error is None and (tmp_path / "doctor-lightning-report" / "report.html").exists()
    assert len(doc.monitor._val[0]) >= 2  # noqa: SLF001 - validation losses were picked up from val_loss


def test_lightning_diverging_fit_is_stopped_by_halt_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = example("lightning_fit").main(["--lr", "30"])
    assert doc.halted is not None and doc.halted.finding.rule == "nan-loss"
    assert doc.monitor.steps == 50  # the fit stopped at the first read after the loss went NaN, not at 300


def test_hf_trainer_healthy_run_is_clean(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = example("hf_trainer").main([])
    assert doc.monitor.steps == 150 and doc.monitor.findings == [], [f.rule for f in doc.monitor.findings]
    assert doc.monitor.error is None and doc._hook is None  # noqa: SLF001 - the loss hook is gone
    assert (tmp_path / "doctor-hf-report" / "report.json").exists()


def test_hf_trainer_fault_is_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = example("hf_trainer").main(["--lr", "30"])
    found = {(f.rule, f.location.module) for f in doc.monitor.findings}
    assert ("saturated-activation", "bert.pooler.activation") in found, found


def test_the_adapters_say_what_to_install_when_the_framework_is_missing(monkeypatch) -> None:
    import builtins  # noqa: PLC0415
    import sys  # noqa: PLC0415

    real = builtins.__import__

    def no_frameworks(name, *args, **kwargs):
        if name.split(".")[0] in ("lightning", "pytorch_lightning", "transformers"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    for mod in ("doctor.integrations.lightning", "doctor.integrations.hf"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_frameworks)
    with pytest.raises(ImportError, match=r"pip install 'doctor\[lightning\]'"):
        importlib.import_module("doctor.integrations.lightning")
    with pytest.raises(ImportError, match=r"pip install 'doctor\[hf\]'"):
        importlib.import_module("doctor.integrations.hf")
