"""Configuration: `[tool.doctor]` in pyproject.toml, a doctor.toml, or --config FILE; CLI flags win.

Discovery walks up from the target's folder (the working directory for `doctor rules`): the first
folder with a doctor.toml, or a pyproject.toml that has a [tool.doctor] table, gives the file.
Keys are kebab-case, as in pyproject.toml tools generally:

    [tool.doctor]
    select = ["dead-relu", "overfitting"]    # evaluate only these (default: all)
    ignore = ["init-loss"]                   # never evaluate these
    rules-dirs = ["ci/doctor-rules"]         # extra YAML rule folders, relative to this file
    budget = "quick"                         # quick | standard | deep
    device = "cpu"                           # auto | cpu | cuda
    seed = 0
    fail-on = "warning"                      # error | warning | info | never
    timeout = 300                            # seconds for the whole collection
    baseline = "doctor-baseline.json"        # relative to this file
    verify-fixes = true                      # apply each finding's fix in a re-run and report the verdict

    [tool.doctor.severity]                   # per-rule severity
    init-loss = "info"

    [tool.doctor.params.dead-relu]           # per-rule thresholds (see `doctor explain RULE`)
    dead_frac = 0.7

An unknown key or a bad value is a ConfigError naming the file, the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from doctor.collect.spec import SEED_LIMIT
from doctor.engine.schema import suggest

CONFIG_NAMES = ("doctor.toml", "pyproject.toml")
BUDGETS = ("quick", "standard", "deep")
DEVICES = ("auto", "cpu", "cuda")
FAIL_ON = ("error", "warning", "info", "never")
SEVERITIES = ("error", "warning", "info")

ParamValue = Union[bool, int, float, str]

# What each key accepts, in words, for error messages.
ALLOWED = {
    "select": "a list of rule ids",
    "ignore": "a list of rule ids",
    "rules-dirs": "a list of folder paths (relative to the configuration file)",
    "budget": "one of " + ", ".join(BUDGETS),
    "device": "one of " + ", ".join(DEVICES),
    "seed": "a whole number from 0 to 2**63 - 1",
    "fail-on": "one of " + ", ".join(FAIL_ON),
    "timeout": "a positive number of seconds",
    "baseline": "a file path (relative to the configuration file)",
    "severity": "a table of rule id = " + " | ".join(f'"{s}"' for s in SEVERITIES),
    "params": "a table per rule id of param = number, string or boolean",
}


class ConfigError(Exception):
    """A configuration file that cannot be used: exit 2 with this message."""


class Config(BaseModel):
    """The [tool.doctor] table, validated. None means 'not set here'."""

    model_config = ConfigDict(extra="forbid", strict=True)

    select: Optional[list[str]] = None
    ignore: list[str] = Field(default_factory=list)
    rules_dirs: list[str] = Field(default_factory=list, alias="rules-dirs")
    budget: Optional[Literal["quick", "standard", "deep"]] = None
    device: Optional[Literal["auto", "cpu", "cuda"]] = None
    seed: Optional[int] = Field(default=None, ge=0, lt=SEED_LIMIT)
    fail_on: Optional[Literal["error", "warning", "info", "never"]] = Field(default=None, alias="fail-on")
    timeout: Optional[float] = Field(default=None, gt=0)
    baseline: Optional[str] = None
    # --verify-fixes by default; the spelling (verify_fixes) is accepted beside the kebab-case key
    verify_fixes: Optional[bool] = Field(default=None, validation_alias=AliasChoices("verify-fixes", "verify_fixes"))
    deploy: Optional[bool] = None  # the deployment probes at every budget, as --deploy
    nproc: Optional[int] = Field(default=None, ge=1, le=8)  # as --nproc
    severity: dict[str, Literal["error", "warning", "info"]] = Field(default_factory=dict)
    params: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)


class Loaded(BaseModel):
    """A validated configuration and where it came from (paths in it resolved against its folder)."""

    config: Config = Field(default_factory=Config)
    path: Optional[Path] = None
    section: str = ""  # "[tool.doctor]" for a pyproject.toml, "" for a doctor.toml

    def key(self, name: str, table: str = "") -> str:
        """How messages name a key: '[tool.doctor] fail-on', '[tool.doctor.params.dead-relu] dead_frac'."""
        base = self.section[1:-1] if self.section else ""
        full = ".".join(x for x in (base, table) if x)
        return f"[{full}] {name}".strip() if full else name

    def where(self, key: str) -> str:
        return f"{self.path or 'configuration'}: {key}"

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path(".")

    def rules_dirs(self) -> list[Path]:
        return [(self.root / d) for d in self.config.rules_dirs]

    def baseline(self) -> Optional[Path]:
        return self.root / self.config.baseline if self.config.baseline else None


def _read_toml(path: Path) -> dict[str, Any]:
    shown = _display(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML (not UTF-8: {exc.reason})") from None


def _table(data: dict[str, Any]) -> Optional[dict[str, Any]]:
    tool = data.get("tool")
    if isinstance(tool, dict) and "doctor" in tool:
        return tool["doctor"]
    return None


def _display(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def parse(path: Path) -> Loaded:
    """Read and validate one configuration file (a pyproject.toml, a doctor.toml, or any TOML file)."""
    data = _read_toml(path)
    table = _table(data)
    section = "[tool.doctor]" if table is not None else ""
    if table is None:
        if path.name == "pyproject.toml":
            raise ConfigError(f"{_display(path)}: has no [tool.doctor] table")
        table = data
    if not isinstance(table, dict):
        raise ConfigError(f"{_display(path)}: [tool.doctor] must be a table")
    loaded = Loaded(path=_display(path), section=section)
    try:
        loaded.config = Config.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, loaded)) from None
    return loaded


def _explain(exc: ValidationError, loaded: Loaded) -> str:
    """Each problem as 'file: [table] key: what is wrong, got X' (allowed keys or values named)."""
    lines = []
    fields = {f.alias or name for name, f in Config.model_fields.items()}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = loc[0] if loc else ""
        got = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"{loaded.where(loaded.key(key))}: unknown key{suggest(key, fields)}; "
                         f"allowed keys: {', '.join(sorted(fields))}")
        elif key == "severity" and len(loc) >= 2:
            allowed = " | ".join(f'"{s}"' for s in SEVERITIES)
            lines.append(f"{loaded.where(loaded.key(loc[1], 'severity'))}: must be {allowed}, got {got!r}")
        elif key == "params" and len(loc) == 2:
            lines.append(f"{loaded.where(loaded.key(loc[1], 'params'))}: must be a table of param = value, got {got!r}")
        elif key == "params" and len(loc) >= 3:
            lines.append(f"{loaded.where(loaded.key(loc[2], 'params.' + loc[1]))}: must be a number, string or "
                         f"boolean, got {got!r}")
        elif key in ("select", "ignore", "rules-dirs") and len(loc) >= 2:
            lines.append(f"{loaded.where(loaded.key(key))}: must be {ALLOWED[key]}; item {int(loc[1]) + 1} is {got!r}")
        else:
            lines.append(f"{loaded.where(loaded.key(key))}: must be {ALLOWED.get(key, 'valid')}, got {got!r}")
    return "\n".join(dict.fromkeys(lines))  # pydantic may report one bad value once per union member


def find(start: Path) -> Optional[Path]:
    """The configuration file for `start`: walk up to the first doctor.toml or pyproject.toml with [tool.doctor]."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    for d in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            cand = d / name
            if not cand.is_file():
                continue
            if name == "doctor.toml" or _table(_read_toml(cand)) is not None:
                return cand
    return None


def load(explicit: Optional[Path], start: Optional[Path]) -> Loaded:
    """--config FILE when given, else the discovered file, else an empty configuration."""
    if explicit is not None:
        return parse(explicit)
    found = find(start if start is not None else Path.cwd())
    return parse(found) if found else Loaded()


def override_error(message: str, loaded: Loaded, rule: str, kind: str) -> str:
    """A rule loader's complaint about an override, named by the configuration key it came from."""
    key = loaded.key(rule, "severity") if kind == "severity" else loaded.key("", f"params.{rule}").strip()
    return f"{loaded.where(key)}: {message}"
