"""Find the call in the user's file that a fix changes, and write the change as edits and a unified diff.

Read-only: the file is parsed, never written. Every finder returns nothing when the site is not plain
(the value comes from a config object, the call is built dynamically, two candidates and no way to tell
which): a suggested diff that edits the wrong line is worse than none.
"""

from __future__ import annotations

import ast
import difflib
import os
from functools import lru_cache
from typing import Iterable, Optional

from doctor.metrics import SourceEdit


@lru_cache(maxsize=8)
def _parsed(path: str, mtime: float) -> tuple[str, Optional[ast.Module]]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        return text, ast.parse(text)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return "", None


def parsed(path: str) -> tuple[str, Optional[ast.Module]]:
    """The file's text and syntax tree ("", None when it cannot be read)."""
    try:
        return _parsed(os.path.realpath(path), os.path.getmtime(path))
    except OSError:
        return "", None


def name_of(func: ast.expr) -> str:
    """`nn.Softmax` -> "Softmax", `F.mse_loss` -> "mse_loss", `DataLoader` -> "DataLoader"."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def calls(tree: Optional[ast.AST], names: Iterable[str]) -> list[ast.Call]:
    """Every call in the file to one of `names`, in source order."""
    wanted = set(names)
    if tree is None:
        return []
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and name_of(n.func) in wanted]
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def _char_col(text_line: str, byte_col: int) -> int:
    # ast gives UTF-8 byte offsets; SARIF and editors count characters.
    return len(text_line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def replace(path: str, node: ast.AST, new_text: str) -> SourceEdit:
    """An edit that puts `new_text` where `node` is written."""
    text, _ = parsed(path)
    lines = text.splitlines()
    col = _char_col(lines[node.lineno - 1], node.col_offset)
    end_col = _char_col(lines[node.end_lineno - 1], node.end_col_offset)
    return SourceEdit(file=path, line=node.lineno, col=col + 1, end_line=node.end_lineno, end_col=end_col + 1,
                      old_text=ast.get_source_segment(text, node) or "", new_text=new_text)


def insert_argument(path: str, call: ast.Call, argument: str) -> SourceEdit:
    """An edit that adds `argument` (e.g. "drop_last=True") as the call's last argument."""
    text, _ = parsed(path)
    lines = text.splitlines()
    line, byte_end = call.end_lineno, call.end_col_offset - 1  # the closing parenthesis
    col = _char_col(lines[line - 1], byte_end)
    before = lines[line - 1][:col].rstrip()
    prior = before[-1:] if before else ""
    if not prior:  # the parenthesis starts its line: look at the end of the previous non-blank line
        prior = next((ln.rstrip()[-1:] for ln in reversed(lines[: line - 1]) if ln.strip()), "")
    has_args = bool(call.args or call.keywords)
    sep = "" if not has_args else " " if prior == "," else ", "
    return SourceEdit(file=path, line=line, col=col + 1, end_line=line, end_col=col + 1, new_text=f"{sep}{argument}")


def segment(path: str, node: ast.AST) -> str:
    text, _ = parsed(path)
    return ast.get_source_segment(text, node) or ""


def keyword(call: ast.Call, name: str) -> Optional[ast.keyword]:
    return next((k for k in call.keywords if k.arg == name), None)


def number(node: Optional[ast.expr], tree: Optional[ast.Module]) -> tuple[Optional[float], Optional[ast.expr]]:
    """The numeric value of `node` and the node holding it: a literal, or a module-level NAME = literal."""
    if node is None:
        return None, None
    if isinstance(node, ast.Name) and tree is not None:
        assigns = [a for a in tree.body if isinstance(a, ast.Assign) and len(a.targets) == 1
                   and isinstance(a.targets[0], ast.Name) and a.targets[0].id == node.id]
        if len(assigns) != 1:
            return None, None
        node = assigns[0].value
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, None
    return float(value), node


def diff(edits: list[SourceEdit]) -> str:
    """The edits (all in one file) as a unified diff against the file as it is; "" when there are none."""
    if not edits:
        return ""
    path = edits[0].file
    text, _ = parsed(path)
    lines = text.splitlines(keepends=True)
    new = list(lines)
    # Apply from the end so earlier positions stay valid.
    for e in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
        head = new[e.line - 1][: e.col - 1]
        tail = new[e.end_line - 1][e.end_col - 1:]
        new[e.line - 1: e.end_line] = [head + e.new_text + tail]
    name = os.path.basename(path)
    return "".join(difflib.unified_diff(lines, "".join(new).splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}", n=2))


def site_line(site: Optional[str]) -> Optional[int]:
    """The line of a 'file:line' site."""
    if not site:
        return None
    _head, _, tail = site.rpartition(":")
    return int(tail) if tail.isdigit() else None


def at_line(found: list[ast.Call], line: Optional[int]) -> list[ast.Call]:
    """The calls that span `line` (a module's construction site), or all of them when no line is known."""
    if line is None:
        return found
    return [c for c in found if c.lineno <= line <= c.end_lineno]
