"""The Jinja environment for report templates, loaded from doctor.resources.reports_dir()."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from doctor.resources import reports_dir
from doctor.render import values


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
    return env


def read_asset(name: str) -> str:
    return (reports_dir() / name).read_text(encoding="utf-8")
