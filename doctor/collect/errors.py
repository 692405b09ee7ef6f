"""Turn an exception from user code into a short sentence that points at the user's file and line."""

from __future__ import annotations

import os
import traceback
from types import TracebackType
from typing import Optional

from doctor.metrics import ErrorRecord


def user_frame(tb: Optional[TracebackType], target_file: str) -> tuple[Optional[str], Optional[int]]:
    """The deepest traceback frame inside the target file: where the user's code went wrong."""
    target = os.path.realpath(target_file)
    found: tuple[Optional[str], Optional[int]] = (None, None)
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if os.path.realpath(fname) == target:
            found = (fname, tb.tb_lineno)
        tb = tb.tb_next
    return found


def describe(exc: BaseException) -> str:
    """'ValueError: bad shape' in one line, long messages trimmed to what a terminal shows."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def error_record(
    exc: BaseException,
    *,
    kind: str,
    target_file: str,
    what: str,
    hint: str = "",
    probe: Optional[str] = None,
) -> ErrorRecord:
    """An ErrorRecord saying `what` failed, with the user's file:line when the traceback passes there."""
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = exc.filename, exc.lineno
    else:
        file, line = user_frame(exc.__traceback__, target_file)
    where = f" at {file}:{line}" if file else ""
    return ErrorRecord(
        kind=kind,  # type: ignore[arg-type]
        message=f"{what}{where}: {describe(exc)}",
        hint=hint,
        file=file,
        line=line,
        probe=probe,
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )
