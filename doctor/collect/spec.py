"""What the parent asks the collector process to do (no torch: the parent writes it)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

SEED_LIMIT = 2**63  # torch.manual_seed takes 64 bits; a larger seed would kill the collector


class CollectSpec(BaseModel):
    target: str  # absolute path of the user's file
    factory: Optional[str] = None  # from `file.py:factory`
    budget: Literal["quick", "standard", "deep"] = "standard"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = Field(default=0, ge=0, lt=SEED_LIMIT)
    static_only: bool = False
    verify_fixes: bool = False  # after the probes, wait for verify.json and re-measure the fixes it names
    deploy: bool = False  # --deploy: the deployment probes run at any budget (they run at deep regardless)
    nproc: int = Field(default=1, ge=1, le=8)  # --nproc N: a burst under DDP on N local processes as well


SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.json"
PROGRESS_FILE = "progress.json"
LOG_FILE = "collector.log"
VERIFY_FILE = "verify.json"  # the parent's list of FixRequest, written once the probes are done
AWAIT_VERIFY = "awaiting-verify"  # the progress stage while the collector waits for it
