"""The `doctor` command line: check, rules, explain."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from doctor import __version__
from doctor.exitcodes import ExitCode

if TYPE_CHECKING:
    from doctor.config import Loaded
    from doctor.engine.loader import Rule

FORMATS = ("text", "json", "markdown", "html", "sarif", "junit", "github")
FAIL_ON = ("error", "warning", "info", "never")
BUDGETS = ("quick", "standard", "deep")
DEVICES = ("auto", "cpu", "cuda")


class UsageError(Exception):
    """Bad flags or configuration: exit 2 with this message."""


def _nproc(text: str) -> int:
    """A number of local processes for the DDP burst: 1 (none) to 8."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 8:
        raise argparse.ArgumentTypeError(f"{value} is out of range: --nproc takes 1 to 8 processes")
    return value


def _seed(text: str) -> int:
    """A seed torch accepts (it takes 64 bits; beyond that the collector would die on it)."""
    from doctor.collect.spec import SEED_LIMIT  # noqa: PLC0415

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is out of range: a seed is from 0 to 2**63 - 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="doctor", description="A training doctor for PyTorch.")
    p.add_argument("--version", action="version", version=f"doctor {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="diagnose a training setup", description=(
        "Load TARGET (a Python file, optionally FILE.py:factory), measure it in short training bursts, "
        "and report what is wrong and what to change. With --logdir, judge a finished run from its "
        "TensorBoard logs instead, with no model at all. Flags override the configuration "
        "([tool.doctor] in pyproject.toml, or doctor.toml, found upward from the target; or --config)."))
    c.add_argument("target", metavar="TARGET", nargs="?", help="the target file (not with --logdir)")
    c.add_argument("--format", choices=FORMATS, default="text", help="what goes to stdout (default: text)")
    c.add_argument("--output-dir", type=Path, help="write report.html, report.md, report.json, report.sarif, "
                                                   "junit.xml, metrics.json and TensorBoard events (tb/) here")
    c.add_argument("--static", action="store_true", help="static facts and rules only: no training step")
    c.add_argument("--budget", choices=BUDGETS, default=None, help="training steps per burst (default: standard)")
    c.add_argument("--device", choices=DEVICES, default=None, help="where to run the bursts (default: auto)")
    c.add_argument("--seed", type=_seed, default=None, help="random seed for the bursts (default: 0)")
    c.add_argument("--timeout", type=float, default=None, help="seconds for the whole collection (default: by budget)")
    c.add_argument("--fail-on", choices=FAIL_ON, default=None,
                   help="exit 1 when a finding is at or above this severity (default: error)")
    c.add_argument("--select", nargs="+", metavar="RULE", help="evaluate only these rules")
    c.add_argument("--ignore", nargs="+", metavar="RULE", default=[], help="skip these rules (added to the configuration's)")
    c.add_argument("--rules-dir", type=Path, action="append", default=[], help="an extra directory of YAML rules")
    c.add_argument("--config", type=Path, metavar="FILE", help="read configuration from FILE instead of searching for it")
    c.add_argument("--baseline", type=Path, metavar="FILE", help="fail only on findings not recorded in FILE")
    c.add_argument("--write-baseline", type=Path, metavar="FILE",
                   help="record the current findings in FILE (for --baseline) and exit 0")
    c.add_argument("--verify-fixes", action="store_true", default=None,
                   help="apply each finding's fix in a re-run burst (the file is not changed) and report whether "
                        "the symptom went")
    c.add_argument("--deploy", action="store_true", default=None,
                   help="also check deployment readiness: export, eval-mode determinism, int8/bf16 drift, "
                        "inference cost (on by default at --budget deep)")
    c.add_argument("--nproc", type=_nproc, default=None, metavar="N",
                   help="also run a burst under DistributedDataParallel on N local CPU processes (gloo) for the "
                        "distributed rules")
    c.add_argument("--metrics", type=Path, help="judge a saved metrics.json instead of running the target")
    c.add_argument("--logdir", type=Path, metavar="RUN_DIR",
                   help="judge a finished run from the TensorBoard event files under RUN_DIR (no model needed)")
    _console_flags(c)

    r = sub.add_parser("rules", help="list the rules", description="List the rules (with the configuration's "
                                                                   "severity overrides and rule directories).")
    r.add_argument("--format", choices=("text", "json"), default="text")
    r.add_argument("--rules-dir", type=Path, action="append", default=[])
    r.add_argument("--config", type=Path, metavar="FILE")
    _console_flags(r)
    e = sub.add_parser("explain", help="print one rule's documentation")
    e.add_argument("rule")
    e.add_argument("--rules-dir", type=Path, action="append", default=[])
    e.add_argument("--config", type=Path, metavar="FILE")
    _console_flags(e)
    return p


def _console_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true",
                   help="progress lines even when not on a terminal, tracebacks and the collector's log")
    g.add_argument("-q", "--quiet", action="store_true", help="nothing on stderr but errors")


class Console:
    """Everything human goes to stderr; progress and colour only on a terminal (and never with NO_COLOR)."""

    def __init__(self, quiet: bool = False, verbose: bool = False):
        self.quiet, self.verbose = quiet, verbose
        self.tty = sys.stderr.isatty()
        self.color = self.tty and "NO_COLOR" not in os.environ
        self._live = False  # a progress line is on screen, to be overwritten

    def _write(self, text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def clear(self) -> None:
        if self._live:
            self._write("\r\x1b[K")
            self._live = False

    def progress(self, step: str) -> None:
        if self.quiet:
            return
        if self.tty:  # one line, rewritten in place
            self._write(f"\r\x1b[K{self.paint('2', f'doctor: {step} ...')}")
            self._live = True
        elif self.verbose:  # a log wants lines, and only when asked for
            self._write(f"doctor: {step} ...\n")

    def info(self, msg: str, code: str = "") -> None:
        if not self.quiet:
            self.clear()
            self._write(self.paint(code, msg) + "\n")

    def error(self, msg: str) -> None:
        self.clear()
        self._write(self.paint("31;1", msg) + "\n")

    def paint(self, code: str, s: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if self.color and code else s


def _stdout_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _split_target(target: str) -> tuple[str, Optional[str]]:
    """`model.py:factory` -> (model.py, factory); a bare path -> (path, None)."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier() and head:
        return head, tail
    return target, None


# -- configuration and rules ------------------------------------------------------------------


def _config(explicit: Optional[Path], start: Optional[Path]) -> "Loaded":
    from doctor.config import ConfigError, load  # noqa: PLC0415

    try:
        return load(explicit, start)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _load_rules(dirs: list[Path], cfg: Optional["Loaded"] = None) -> list["Rule"]:
    from doctor.config import override_error  # noqa: PLC0415
    from doctor.engine.loader import RuleError, load_rules  # noqa: PLC0415

    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"--rules-dir {d}: not a directory" if cfg is None or d not in cfg.rules_dirs()
                             else f"{cfg.where(cfg.key('rules-dirs'))}: {d} is not a directory")
    params = cfg.config.params if cfg else {}
    severity = cfg.config.severity if cfg else {}
    try:
        return load_rules(dirs, params_overrides=params, severity_overrides=severity)
    except RuleError as exc:
        msgs = []
        for e in exc.errors:
            m = re.search(r"rule '([^']+)'", e.message)
            if cfg is not None and "override" in e.message and m:
                kind = "severity" if e.message.startswith("severity") or m.group(1) not in params else "params"
                msgs.append(override_error(e.message, cfg, m.group(1), kind))
            else:
                msgs.append(f"rule error: {e.one_line()}")
        raise UsageError("\n".join(msgs)) from None


def _probes(rule: "Rule") -> set[str]:
    from doctor.metrics import CATALOGUE  # noqa: PLC0415

    return {CATALOGUE[n].probe for n in rule.when.names if n in CATALOGUE}


def _logs_only(rule: "Rule") -> bool:
    """A rule that reads only what TensorBoard logs give (run.*): it means nothing for a model check."""
    from doctor.catalogue.run import PROBE  # noqa: PLC0415

    probes = _probes(rule)
    return bool(probes) and probes <= {PROBE}


def _from_logs(rule: "Rule") -> bool:
    """A rule a TensorBoard log can decide: it reads only loss and accuracy curves (no model, no data)."""
    from doctor.catalogue.run import PROBE  # noqa: PLC0415

    probes = _probes(rule)
    return bool(probes) and probes <= {PROBE, "train_val", "curve_tests"}


def _check_ids(ids: Sequence[str], known: set[str], where: str) -> None:
    from doctor.engine.schema import suggest  # noqa: PLC0415

    for rid in ids:
        if rid not in known:
            raise UsageError(f"{where}unknown rule '{rid}'{suggest(rid, known)} (see `doctor rules`)")


def _rule_info(rule: "Rule"):
    from doctor.engine.explain import explain  # noqa: PLC0415
    from doctor.report import RuleInfo  # noqa: PLC0415

    d = rule.doc
    md = (f"**{rule.title}**\n\n{d.what}\n\n**Why it matters.** {d.why}\n\n**Example that triggers it**\n\n"
          f"```python\n{d.example.rstrip()}\n```\n\n**Instead**\n\n```python\n{d.instead.rstrip()}\n```\n")
    return RuleInfo(id=rule.id, title=rule.title, symptom=rule.symptom, severity=rule.severity, scope=rule.scope,
                    family=rule.source.parent.name, what=d.what, why=d.why, help=explain(rule), help_markdown=md,
                    params=dict(rule.params), explains=list(rule.spec.explains))


# -- check --------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace, cfg: "Loaded") -> dict:
    """Flags win over the configuration, which wins over the built-in defaults."""
    c = cfg.config

    def pick(flag, conf, default):
        return flag if flag is not None else conf if conf is not None else default

    return {
        "budget": pick(args.budget, c.budget, "standard"),
        "device": pick(args.device, c.device, "auto"),
        "seed": pick(args.seed, c.seed, 0),
        "fail_on": pick(args.fail_on, c.fail_on, "error"),
        "timeout": pick(args.timeout, c.timeout, None),
        "baseline": args.baseline if args.baseline is not None else cfg.baseline(),
        "verify_fixes": bool(pick(args.verify_fixes, c.verify_fixes, False)),
        "deploy": bool(pick(args.deploy, c.deploy, False)),
        "nproc": pick(args.nproc, c.nproc, 1),
    }


def _select_rules(args: argparse.Namespace, cfg: "Loaded", rules: list["Rule"]) -> list["Rule"]:
    known = {r.id for r in rules}
    _check_ids(list(args.select or []) + list(args.ignore), known, "")
    _check_ids(cfg.config.select or [], known, f"{cfg.where(cfg.key('select'))}: ")
    _check_ids(cfg.config.ignore, known, f"{cfg.where(cfg.key('ignore'))}: ")
    select = args.select if args.select else cfg.config.select
    ignore = set(cfg.config.ignore) | set(args.ignore)
    if select:
        rules = [r for r in rules if r.id in set(select)]
    rules = [r for r in rules if r.id not in ignore]
    if not args.logdir:
        rules = [r for r in rules if not _logs_only(r)]
    elif not select:  # a log has curves only: rules about the model or the data would all be skipped
        rules = [r for r in rules if _from_logs(r)]
    return rules


def _metrics(args: argparse.Namespace, settings: dict, console: Console, path: str, factory: Optional[str],
             meanwhile=lambda: None, plan_fixes=None):
    """Measure (or read) the metrics; returns (metrics, collector log, failed-to-start ExitCode or None)."""
    from doctor.metrics import Metrics  # noqa: PLC0415

    if args.logdir:
        from doctor.logdir import LogdirError, read  # noqa: PLC0415

        console.progress("reading TensorBoard logs")
        try:
            return read(args.logdir), "", None
        except LogdirError as exc:
            raise UsageError(str(exc)) from None
        finally:
            console.clear()
    if args.metrics:
        try:
            return Metrics.model_validate_json(args.metrics.read_text()), "", None
        except (OSError, ValueError) as exc:
            raise UsageError(f"--metrics {args.metrics}: cannot read a metrics document ({str(exc).splitlines()[0]})")
    if not os.path.isfile(path):
        console.error(f"doctor: {path}: no such file")
        return None, "", ExitCode.TARGET
    from doctor.collect.budget import BUDGETS as BUDGET_SPECS  # noqa: PLC0415
    from doctor.collect.spec import CollectSpec  # noqa: PLC0415
    from doctor.runner import collect  # noqa: PLC0415

    verify = settings["verify_fixes"] and not args.static
    spec = CollectSpec(target=os.path.abspath(path), factory=factory, budget=settings["budget"],
                       device=settings["device"], seed=settings["seed"], static_only=args.static, verify_fixes=verify,
                       deploy=settings["deploy"] and not args.static, nproc=1 if args.static else settings["nproc"])
    timeout = settings["timeout"] if settings["timeout"] is not None else BUDGET_SPECS[settings["budget"]].timeout_s
    if verify and settings["timeout"] is None:  # each verified fix re-runs a burst: room for about two more runs
        timeout *= 3
    if not timeout > 0:  # also refuses NaN, which no deadline would ever pass
        raise UsageError("--timeout must be positive")
    collector, args.collector = getattr(args, "collector", None), None  # collect() closes it
    try:
        collected = collect(spec, timeout, progress=console.progress, meanwhile=meanwhile, collector=collector,
                            plan_fixes=plan_fixes)
    finally:
        console.clear()
    metrics = collected.metrics
    if collected.returncode == ExitCode.USAGE and metrics.errors:
        last = metrics.errors[-1]
        raise UsageError(last.message + (f" {last.hint}" if last.hint else ""))
    return metrics, collected.log, None


def _apply_baseline(report, args: argparse.Namespace, settings: dict, console: Console) -> None:
    from doctor import baseline  # noqa: PLC0415

    try:
        if args.write_baseline is not None:
            key = baseline.target_key(report.target, args.write_baseline)
            n = baseline.write(args.write_baseline, key, report.findings)
            info = baseline.apply(report.findings, baseline.load(args.write_baseline), key, args.write_baseline)
            info.written = True
            report.baseline = info
            console.info(f"doctor: wrote {n} finding{'s' if n != 1 else ''} to baseline {args.write_baseline}")
        elif settings["baseline"] is not None:
            path = settings["baseline"]
            key = baseline.target_key(report.target, path)
            report.baseline = baseline.apply(report.findings, baseline.load(path), key, path)
    except baseline.BaselineError as exc:
        raise UsageError(str(exc)) from None


def cmd_check(args: argparse.Namespace) -> int:
    console = Console(args.quiet, args.verbose)
    t0 = time.perf_counter()
    if args.logdir and args.target:
        raise UsageError("give either a TARGET file or --logdir RUN_DIR, not both")
    if args.logdir and (args.metrics or args.static):
        raise UsageError("--logdir judges TensorBoard logs; it does not combine with --metrics or --static")
    if not args.logdir and not args.target:
        raise UsageError("check needs a TARGET file (or --logdir RUN_DIR); see `doctor check --help`")
    path, factory = _split_target(args.target or "")
    start = Path(args.logdir) if args.logdir else Path(path) if path else None
    cfg = _config(args.config, start)
    settings = _settings(args, cfg)
    loaded: dict[str, list] = {}

    def load() -> None:  # a bad rule or selection is exit 2, with or without a collector running
        loaded["every"] = _load_rules(cfg.rules_dirs() + list(args.rules_dir), cfg)
        loaded["rules"] = _select_rules(args, cfg, loaded["every"])
        # Imported here, not before the collector starts: it should be importing torch already.
        import doctor.baseline, doctor.engine.evaluate, doctor.render, doctor.report, doctor.suppress  # noqa: E401,F401,PLC0415

    # The rules load while the collector imports torch; --metrics and --logdir start no collector.
    def plan_fixes(measured):  # --verify-fixes: the collector waits for this once its probes are done
        from doctor.engine.verdict import plan  # noqa: PLC0415

        if "rules" not in loaded:
            load()
        return plan(loaded["rules"], measured)

    metrics, log, early = _metrics(args, settings, console, path, factory, meanwhile=load, plan_fixes=plan_fixes)
    if early is not None:
        return early
    if "every" not in loaded:
        load()
    every, rules = loaded["every"], loaded["rules"]
    from doctor import baseline, suppress  # noqa: PLC0415
    from doctor.engine.evaluate import judge  # noqa: PLC0415
    from doctor.render import render, write_outputs  # noqa: PLC0415
    from doctor.report import Report, Status  # noqa: PLC0415
    judgement = judge(rules, metrics)
    if metrics.verifications:
        from doctor.engine.verdict import attach  # noqa: PLC0415

        attach(judgement.findings, rules, metrics)
    baseline.assign(judgement.findings)
    decided = set(judgement.passed) | {f.rule for f in judgement.findings}
    silenced = suppress.apply(judgement.findings, path if path and os.path.isfile(path) else None,
                              known={r.id for r in every}, decided=decided)
    target = str(args.logdir) if args.logdir else args.target
    report = Report(
        version=__version__, target=target, fail_on=settings["fail_on"],
        setup=metrics.setup, findings=silenced.active, probes=metrics.probes, errors=metrics.errors,
        rules_evaluated=judgement.evaluated, rules_skipped=judgement.skipped, rules_passed=judgement.passed,
        suppressed=silenced.suppressed, unused_suppressions=silenced.notes, metrics=metrics,
        rules=[_rule_info(r) for r in rules],
    )
    # A crash whose cause a finding names is that finding, not a failed run; any other failure fails it.
    report.explain_errors()
    failed = bool(report.unexplained_errors())
    if failed and args.write_baseline is not None:
        # A run that stopped early measured only part of the setup: recording it would hide the rest.
        console.error(f"doctor: not writing {args.write_baseline}: the check did not complete")
        args.write_baseline = None
    _apply_baseline(report, args, settings, console)
    gating = report.gating()
    report.status = Status.failed if failed else (Status.findings if gating else Status.clean)
    report.duration_s = round(time.perf_counter() - t0, 2)

    out = render(report, args.format, color=_stdout_color() and args.format == "text", verbose=args.verbose)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
        sys.stdout.flush()
    if args.output_dir:
        try:
            written = write_outputs(report, args.output_dir)
        except OSError as exc:  # the report is on stdout already; say why the files are not
            raise UsageError(f"--output-dir {args.output_dir}: cannot write the reports there "
                             f"({exc.strerror or exc})") from None
        console.info(f"doctor: wrote {', '.join(str(p) for p in written)}")
    _human_summary(report, args, console, log)
    if failed:
        return ExitCode.TARGET
    return ExitCode.FINDINGS if gating else ExitCode.OK


def _human_summary(report, args: argparse.Namespace, console: Console, log: str) -> None:
    """The lines a person reads on stderr: what was silenced, the baseline, the verdict, errors."""
    if args.format == "github":
        from doctor.render.github import annotations  # noqa: PLC0415

        _, left = annotations(report)
        if left:
            console.info(f"doctor: {left} more annotation{'s' if left != 1 else ''} not shown "
                         "(GitHub shows ten per step); see the full report")
    if args.format != "text":  # the text report already says all this on stdout
        if report.suppressed:
            console.info(f"doctor: {len(report.suppressed)} finding{'s' if len(report.suppressed) != 1 else ''} "
                         "suppressed by `# doctor: ignore` comments")
        for s in report.unused_suppressions:
            console.info(f"doctor: note: {s.file}:{s.line}: {s.problem}")
        b = report.baseline
        if b is not None and not b.written:
            console.info(f"doctor: baseline {b.file}: {b.known} known, {b.new} new, "
                         f"{len(b.absent)} no longer occur" + (" (update it with --write-baseline)" if b.absent else ""))
        c = report.counts()
        code = "31;1" if report.status.value != "clean" else "32"
        console.info(f"doctor: {report.status.value}: {c['error']} errors, {c['warning']} warnings, {c['info']} info",
                     code)
        if report.status.value == "failed":
            from doctor.render.values import short_path  # noqa: PLC0415

            for e in report.errors:
                message = e.message.replace(e.file, short_path(e.file)) if e.file else e.message
                console.error(f"doctor: {message}" + (f"\n  {e.hint}" if e.hint else ""))
    if args.verbose and log:
        console.info("--- collector log ---\n" + log.rstrip())


# -- rules and explain --------------------------------------------------------------------------


def cmd_rules(args: argparse.Namespace) -> int:
    cfg = _config(args.config, None)
    rules = _load_rules(cfg.rules_dirs() + list(args.rules_dir), cfg)
    if args.format == "json":
        rows = [{"id": r.id, "title": r.title, "symptom": r.symptom, "severity": r.severity.value,
                 "default_severity": r.spec.severity, "scope": r.scope, "family": r.source.parent.name,
                 "params": dict(r.params), "needs": sorted(r.when.names), "source": str(r.source)} for r in rules]
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    w_id = max((len(r.id) for r in rules), default=4)
    w_fam = max((len(r.source.parent.name) for r in rules), default=6)
    head = f"{'rule':<{w_id}}  {'severity':<8}  {'scope':<6}  {'family':<{w_fam}}  {'symptom':<22}  title"
    print(head)
    print("-" * len(head))
    for r in rules:
        print(f"{r.id:<{w_id}}  {r.severity.value:<8}  {r.scope:<6}  {r.source.parent.name:<{w_fam}}  "
              f"{r.symptom:<22}  {r.title}")
    return ExitCode.OK


def _fixtures_for(rule_id: str) -> list[str]:
    """Fixtures whose docstring's `expect:` (or, for an info rule, `info:`) line names the rule (a checkout only:
    wheels ship none)."""
    import ast  # noqa: PLC0415

    folder = Path(__file__).resolve().parent.parent / "fixtures"
    found = []
    for p in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        try:
            doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
        except (OSError, SyntaxError, ValueError):
            continue
        named = {x.strip() for m in re.finditer(r"^(?:expect|info):\s*(.+)$", doc, re.M) for x in m.group(1).split(",")}
        if rule_id in named:
            first = doc.strip().splitlines()[0]
            found.append(f"{p.relative_to(folder.parent).as_posix()}: {first}")
    return found


def _override_help(rule: "Rule") -> list[str]:
    out = ["Thresholds and how to override them",
           "    In pyproject.toml (or doctor.toml without the `tool.doctor.` prefix):", ""]
    if rule.params:
        out.append(f"    [tool.doctor.params.{rule.id}]")
        out += [f"    {k} = {json.dumps(v)}" for k, v in rule.params.items()]
        out.append("")
    out += ["    [tool.doctor.severity]", f'    {rule.id} = "{rule.severity.value}"   # error | warning | info', "",
            f"    Turn it off with ignore = [\"{rule.id}\"] in [tool.doctor], or --ignore {rule.id}; silence one",
            f"    place with a `# doctor: ignore[{rule.id}]` comment on the line that builds the layer.", ""]
    return out


def cmd_explain(args: argparse.Namespace) -> int:
    from doctor.engine.explain import explain  # noqa: PLC0415

    cfg = _config(args.config, None)
    rules = {r.id: r for r in _load_rules(cfg.rules_dirs() + list(args.rules_dir), cfg)}
    if args.rule not in rules:
        _check_ids([args.rule], set(rules), "")
    rule = rules[args.rule]
    text = explain(rule)
    # Our sections go before the closing "Defined in" line.
    body, sep, tail = text.rpartition("\nDefined in ")
    extra = _override_help(rule)
    fixtures = _fixtures_for(rule.id)
    if fixtures:
        extra += ["Fixtures that show it"] + [f"    {f}" for f in fixtures] + [""]
    if not sep:
        print(text + "\n\n" + "\n".join(extra).rstrip())
    else:
        print(body + "\n" + "\n".join(extra) + "\nDefined in " + tail)
    return ExitCode.OK


def _early_collector(args: argparse.Namespace):
    """Start the collector process now, if this run will need one: it imports torch while we read config and rules."""
    if args.command != "check" or args.logdir or args.metrics or not args.target:
        return None
    if not os.path.isfile(_split_target(args.target)[0]):
        return None
    from doctor.runner import Collector  # noqa: PLC0415

    return Collector()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    handler = {"check": cmd_check, "rules": cmd_rules, "explain": cmd_explain}[args.command]
    args.collector = None
    try:
        args.collector = _early_collector(args)
        return int(handler(args))
    except UsageError as exc:
        Console().error(f"doctor: {exc}")
        return ExitCode.USAGE
    except KeyboardInterrupt:
        Console().error("doctor: interrupted")
        return 130
    except BrokenPipeError:  # `doctor rules | head`: the reader left, nothing more to say
        sys.stderr.close()
        return ExitCode.OK
    except OSError as exc:  # a file doctor was told to read or write: one sentence, not a traceback
        Console().error(f"doctor: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return ExitCode.USAGE
    finally:
        if args.collector is not None:  # started, never used: a usage error, a missing file, Ctrl-C
            args.collector.close()
