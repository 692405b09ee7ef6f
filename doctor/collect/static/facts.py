"""Where checks write: model-wide and per-layer values, and the sites findings point at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from doctor.metrics import Value


@dataclass
class Facts:
    scalars: dict[str, Value] = field(default_factory=dict)
    layers: dict[str, dict[str, Value]] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)  # subject -> "file:line" (Metrics.layer_sites)
    root: str = ""  # the model's class name, for calls made in its own forward

    def at(self, subject: str, site: Optional[str]) -> str:
        """Register where `subject` (a module path, or e.g. "F.softmax in Net.forward") sits; returns it."""
        if site and subject not in self.sites:
            self.sites[subject] = site
        return subject

    def layer(self, path: str, **values: Value) -> None:
        self.layers.setdefault(path, {}).update({f"static.{k}": v for k, v in values.items()})
