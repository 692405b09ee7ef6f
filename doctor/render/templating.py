"""The Jinja environment for report templates, loaded from doctor.resources.reports_dir()."""

from __future__ import annotations

import re
from functools import lru_cache

import jinja2

from doctor.resources import reports_dir
from doctor.render import values


def _md(s: object) -> str:
    """Escape text for Markdown prose: no raw HTML gets through."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(s: object) -> str:
    return _md(s).replace("|", "\\|").replace("\n", " ")


def _code(s: object) -> str:
    """An inline code span that survives backticks and pipes in the text (table-safe)."""
    text = str(s).replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@lru_cache(maxsize=None)
def environment(autoescape: bool) -> jinja2.Environment:
    """HTML templates autoescape; Markdown ones escape explicitly with the `md`/`cell` filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(reports_dir())),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the tests, not silently renders blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["show"] = values.show
    env.filters["duration"] = values.duration
    env.filters["plural"] = values.plural
    if not autoescape:
        env.filters.update(md=_md, cell=_cell, code=_code)
    return env


def read_asset(name: str) -> str:
    return (reports_dir() / name).read_text(encoding="utf-8")
