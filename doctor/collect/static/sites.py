"""Where things live in the user's file: construction sites of modules, call sites of functions.

While the target file is imported and its model built, `record_sites(path)` wraps
`nn.Module.__init__` so every module constructed remembers the line in the target file that
built it (the innermost frame of that file that is not the module's own constructor). A
torchvision model built in `build_model` gets the `return resnet18(...)` line for all its layers:
the closest line the user owns. Sites are "file:line" strings, the form `Metrics.layer_sites` holds.
"""

from __future__ import annotations

import os
import sys
import weakref
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, Optional

from torch import nn

from doctor.metrics import fmt_site  # the site format belongs to the metrics document


class Sites:
    """Construction sites of module objects, by identity; modules are weakly held."""

    def __init__(self, target: str) -> None:
        self.target = os.path.realpath(target)
        self._files: dict[str, bool] = {}
        self.by_module: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()

    def is_target(self, filename: str) -> bool:
        hit = self._files.get(filename)
        if hit is None:
            hit = self._files[filename] = os.path.realpath(filename) == self.target
        return hit

    def frame_site(self, frame: Optional[FrameType], skip_self: object = None) -> Optional[str]:
        """The innermost frame in the target file, outward from `frame`, skipping `skip_self`'s own __init__."""
        while frame is not None:
            code = frame.f_code
            if self.is_target(code.co_filename):
                if not (skip_self is not None and code.co_name == "__init__"
                        and frame.f_locals.get("self") is skip_self):
                    return fmt_site(code.co_filename, frame.f_lineno)
            frame = frame.f_back
        return None

    def here(self) -> Optional[str]:
        """The call site in the target file of whatever is running now."""
        return self.frame_site(sys._getframe(1))

    def of(self, module: object) -> Optional[str]:
        try:
            return self.by_module.get(module)  # type: ignore[arg-type]
        except TypeError:  # not weak-referenceable
            return None


@contextmanager
def record_sites(sites: Sites) -> Iterator[Sites]:
    """Record where each nn.Module is constructed while the block runs; always restores nn.Module.__init__."""
    original = nn.Module.__init__

    def init(self: nn.Module, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        try:
            if self not in sites.by_module:  # a subclass's super().__init__ chain calls this once per object
                site = sites.frame_site(sys._getframe(1), skip_self=self)
                if site is not None:
                    sites.by_module[self] = site
        except Exception:  # noqa: BLE001 - recording a site must never break the user's model
            pass

    nn.Module.__init__ = init  # type: ignore[method-assign]
    try:
        yield sites
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]
