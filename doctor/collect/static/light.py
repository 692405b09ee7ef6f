"""Keep `--static` light: neither torchvision nor an optimizer may import torch._dynamo (seconds of start-up).

Optimizer methods such as add_param_group are wrapped by torch._compile._disable_dynamo, which
imports torch._dynamo on first call only to mark them "do not compile". A static run never
compiles or steps, so the worker marks them as already handled. torchvision imports it for a helper
that roi_align calls; the worker hands it a stand-in that imports dynamo on first call. Used only under
--static; DOCTOR_EAGER_IMPORTS=1 turns the second off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import linecache
import os
import sys
import types
from collections.abc import Iterator

import torch


def skip_dynamo_for_optimizers() -> None:
    for name in dir(torch.optim.Optimizer):
        fn = getattr(torch.optim.Optimizer, name, None)
        wrapped = getattr(fn, "__wrapped__", None)
        code = getattr(fn, "__code__", None)
        if wrapped is not None and code is not None and code.co_name == "inner" \
                and code.co_filename.endswith("_compile.py") and getattr(wrapped, "__dynamo_disable", None) is None:
            setattr(wrapped, "__dynamo_disable", wrapped)  # what `inner` calls instead of importing dynamo


# torchvision.ops.roi_align does `from torch._dynamo.utils import is_compile_supported` at import time
# (1.5 s here, a third of a static run on a torchvision model) for a helper it calls only inside roi_align.
_DEFERRED_IMPORTER = "torchvision.ops.roi_align"
_DEFERRED_STATEMENT = "from torch._dynamo.utils import is_compile_supported"
_DEFERRED_NAMES = {"torch._dynamo": True, "torch._dynamo.utils": False}  # module name -> is a package
_IMPORT_MACHINERY = {"importlib._bootstrap", "importlib._bootstrap_external", __name__}


def is_compile_supported(device_type):  # noqa: ANN001, ANN201 - same signature as torch's
    """Stand-in bound into roi_align: imports the real helper on first call."""
    from torch._dynamo.utils import is_compile_supported as real  # noqa: PLC0415

    return real(device_type)


def _importer() -> tuple[str, str]:
    """The module whose import statement is being served, and that statement's line (skipping the import
    machinery's frames)."""
    frame = sys._getframe(2)  # noqa: SLF001
    while frame is not None and frame.f_globals.get("__name__") in _IMPORT_MACHINERY:
        frame = frame.f_back
    if frame is None:
        return "", ""
    return frame.f_globals.get("__name__", ""), linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()


class _Placeholder(importlib.abc.Loader):
    """Serves torch._dynamo and torch._dynamo.utils to roi_align's one import statement, then steps aside."""

    def __init__(self) -> None:
        self.modules: dict[str, types.ModuleType] = {}

    def create_module(self, spec):  # noqa: ANN001, ANN201
        module = types.ModuleType(spec.name)
        if _DEFERRED_NAMES[spec.name]:
            module.__path__ = []
        else:
            module.__getattr__ = self._attribute
        self.modules[spec.name] = module
        return module

    def exec_module(self, module) -> None:  # noqa: ANN001
        pass

    def _attribute(self, name: str):  # noqa: ANN202
        if name.startswith("__"):  # the import machinery probing (__path__, __file__): not a name it imports
            raise AttributeError(name)
        # The import statement holds the module object by now; take the placeholders out of sys.modules and
        # off `torch`, so any later `import torch._dynamo` (torch.compile, a probe) gets the real one.
        self.withdraw()
        if name == "is_compile_supported":
            return is_compile_supported
        return getattr(importlib.import_module("torch._dynamo.utils"), name)  # a name we do not know: the real one

    def withdraw(self) -> None:
        for name, module in self.modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        package = self.modules.get("torch._dynamo")
        if package is not None and vars(torch).get("_dynamo") is package:
            delattr(torch, "_dynamo")  # torch's module __getattr__ imports the real one on demand


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.loader = _Placeholder()

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201, ARG002
        # Only that one statement: were torchvision to import dynamo some other way, the placeholders could
        # stay in place for the rest of the target's import; then it pays the 1.5 s like everyone else.
        if name not in _DEFERRED_NAMES or _importer() != (_DEFERRED_IMPORTER, _DEFERRED_STATEMENT):
            return None
        return importlib.machinery.ModuleSpec(name, self.loader, is_package=_DEFERRED_NAMES[name])


@contextlib.contextmanager
def defer_dynamo_for_torchvision() -> Iterator[None]:
    """While the target is imported, keep torchvision from importing torch._dynamo until roi_align is called."""
    if "torch._dynamo" in sys.modules or os.environ.get("DOCTOR_EAGER_IMPORTS"):
        yield
        return
    finder = _Finder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        finder.loader.withdraw()
