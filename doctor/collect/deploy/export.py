"""Run torch.export (and torch.onnx.export where onnx is installed) and name what stopped an export."""

from __future__ import annotations

import importlib.util
import io
import linecache
import logging
import os
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Optional

import torch
from torch import nn
from torch.utils import _pytree as pytree

from doctor.collect.deploy import quiet
from doctor.collect.errors import describe  # noqa: F401 - re-exported for the probes

# (what the exception says, the construct's code, what it is), first match wins; the text is matched lower-cased.
CONSTRUCTS = (
    (("guardondatadependentsymnode", "data-dependent", "data dependent", "could not guard on", "unbacked"),
     "data_dependent", "data-dependent control flow (a Python if/while, bool(), .item() or .tolist() on a tensor's "
     "values)"),
    (("not a known type", "register a pytree", "in output", "output of type", "unsupported output"),
     "non_tensor_output", "a non-tensor output (an object export cannot flatten)"),
    (("specialized", "specialised", "constraints violated"),
     "fixed_batch", "a batch dimension fixed by the code (a reshape or view with a hard-coded size)"),
    ((".numpy()", "numpy"), "numpy", "a round trip through NumPy, which export cannot trace"),
)
UNSUPPORTED = ("unsupported", "an operation export cannot trace (an unsupported op or Python construct)")


@dataclass
class Failure:
    exporter: str  # "torch.export" or "torch.onnx.export"
    kind: str  # the construct's code: data_dependent, non_tensor_output, fixed_batch, numpy, unsupported
    construct: str
    error: str  # 'ExcType: message', one line
    file: Optional[str] = None
    line: Optional[int] = None
    function: str = ""  # the user's function that held the construct, e.g. "Net.forward"
    code: str = ""  # that line of source, stripped


def construct_of(exc: BaseException) -> tuple[str, str]:
    """(code, description) of the construct an export error points at."""
    chain, seen = [], set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:  # the cause or context often says more than the wrapper
        seen.add(id(e))
        chain.append(f"{type(e).__name__} {e}".lower())
        e = e.__cause__ or e.__context__
    text = " ".join(chain)
    for needles, kind, construct in CONSTRUCTS:
        if any(n in text for n in needles):
            return kind, construct
    return UNSUPPORTED


def user_site(tb: Optional[TracebackType], target_file: str) -> tuple[Optional[str], Optional[int], str]:
    """(file, line, qualified function name) of the deepest frame in the target file."""
    target = os.path.realpath(target_file) if target_file else ""
    found: tuple[Optional[str], Optional[int], str] = (None, None, "")
    while tb is not None:
        code = tb.tb_frame.f_code
        if target and os.path.realpath(code.co_filename) == target:
            found = (code.co_filename, tb.tb_lineno, getattr(code, "co_qualname", code.co_name))
        tb = tb.tb_next
    return found


def failure(exc: BaseException, exporter: str, target_file: str) -> Failure:
    file = line = None
    function = ""
    e: Optional[BaseException] = exc
    seen = set()
    while e is not None and id(e) not in seen and file is None:
        seen.add(id(e))
        file, line, function = user_site(e.__traceback__, target_file)
        e = e.__cause__ or e.__context__
    code = linecache.getline(file, line).strip() if file and line else ""
    kind, construct = construct_of(exc)
    error = describe(exc)
    error = error if len(error) <= 200 else error[:197] + "..."  # torch's export errors run on for pages
    return Failure(exporter=exporter, kind=kind, construct=construct, error=error, file=file, line=line,
                   function=function, code=code)


def batch_dynamic(x: Any) -> Any:
    """dynamic_shapes for one positional input: the first dimension of every tensor in it may vary."""
    return pytree.tree_map(lambda t: {0: torch.export.Dim.AUTO} if isinstance(t, torch.Tensor) and t.dim() else None, x)


# torch's shape environment logs each guard it adds with the line that caused it: "eval Eq(s77, 64) [guard added]
# (model.py:27 in forward)". A guard that pins a size to a number is where the batch dimension stopped being dynamic.
_PINNED = re.compile(r"eval Eq\((s\d+), (\d+)\) \[guard added\] \((.+?):(\d+) in ([\w.<>]+)\)")


class _Guards(logging.Handler):
    """Collects (file, line, function) of the guards that pin a symbolic size to a constant, during one export."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.pinned: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _PINNED.search(record.getMessage())
        if m:
            self.pinned.append((m.group(3), int(m.group(4)), m.group(5)))


def export(model: nn.Module, x: Any, pinned: Optional[list] = None) -> torch.export.ExportedProgram:
    """torch.export of the model in its current mode on one input, the batch dimension left dynamic; the sites of
    guards that pinned a size to a constant are appended to `pinned` (file, line, function)."""
    log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    handler, level, propagate = _Guards(), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # torch's own handler would print every guard
    try:
        with quiet():
            return torch.export.export(model, (x,), dynamic_shapes=(batch_dynamic(x),))
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
        if pinned is not None:
            pinned.extend(handler.pinned)


def pinned_site(pinned: list[tuple[str, int, str]], target_file: str) -> Optional[Failure]:
    """The first pinning guard in the target file, as a Failure naming the fixed batch dimension there."""
    target = os.path.realpath(target_file) if target_file else ""
    for file, line, function in pinned:
        if target and (os.path.realpath(file) == target or os.path.basename(file) == os.path.basename(target)):
            kind, construct = "fixed_batch", next(c for _, k, c in CONSTRUCTS if k == "fixed_batch")
            return Failure(exporter="torch.export", kind=kind, construct=construct, error="", file=target, line=line,
                           function=_qualname(target, line) or function, code=linecache.getline(target, line).strip())
    return None


def _qualname(path: str, line: int) -> str:
    """Class.function of the innermost function in the file that holds the line ("" when none does)."""
    import ast  # noqa: PLC0415

    try:
        tree = ast.parse(open(path).read())  # noqa: SIM115, PTH123 - read once, on a failure path only
    except (OSError, SyntaxError, ValueError):
        return ""
    best = ""

    def walk(node: ast.AST, prefix: str) -> None:
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, ast.ClassDef):
                    walk(child, name + ".")
                elif child.lineno <= line <= (child.end_lineno or child.lineno):
                    best = name
                    walk(child, name + ".")
    walk(tree, "")
    return best


def onnx_unavailable() -> str:
    """Why torch.onnx.export is not tried here ("" when it can be)."""
    if importlib.util.find_spec("onnx") is None:
        return "onnx is not installed (pip install 'doctor[deploy]' adds it); torch.export was checked without it"
    if importlib.util.find_spec("onnxscript") is None:
        return ("onnx is installed but onnxscript, which torch.onnx.export needs in this torch version, is not; "
                "torch.export was checked without it")
    return ""


def onnx_export(model: nn.Module, x: Any) -> int:
    """torch.onnx.export (the torch.export-based exporter) into memory; the size of the ONNX model in bytes."""
    buf = io.BytesIO()
    with quiet():
        prog = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=(batch_dynamic(x),), verbose=False)
        prog.save(buf) if prog is not None else None
    return buf.tell()


def pick(out: Any) -> torch.Tensor:
    """The exported program's output, picked as the eager output is."""
    from doctor.collect.context import pick_output  # noqa: PLC0415

    return pick_output(out)[0]
