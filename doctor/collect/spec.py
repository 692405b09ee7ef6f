"""What the parent asks the collector process to do (no torch: the parent writes it)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel


class CollectSpec(BaseModel):
    target: str  # absolute path of the user's file
    factory: Optional[str] = None  # from `file.py:factory`
    budget: Literal["quick", "standard", "deep"] = "standard"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    static_only: bool = False


SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.json"
PROGRESS_FILE = "progress.json"
LOG_FILE = "collector.log"
