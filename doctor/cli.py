"""The `doctor` command line: check, rules, explain."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from doctor import __version__
from doctor.exitcodes import ExitCode

FORMATS = ("text", "json", "markdown", "html")
FAIL_ON = ("error", "warning", "info", "never")


class UsageError(Exception):
    """Bad flags or configuration: exit 2 with this message."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="doctor", description="A training doctor for PyTorch.")
    p.add_argument("--version", action="version", version=f"doctor {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="diagnose a training setup", description=(
        "Load TARGET (a Python file, optionally FILE.py:factory), measure it in short training bursts, "
        "and report what is wrong and what to change."))
    c.add_argument("target", metavar="TARGET")
    c.add_argument("--format", choices=FORMATS, default="text", help="what goes to stdout (default: text)")
    c.add_argument("--output-dir", type=Path, help="write report.html, report.md, report.json, metrics.json here")
    c.add_argument("--static", action="store_true", help="static facts and rules only: no training step")
    c.add_argument("--budget", choices=("quick", "standard", "deep"), default="standard")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--timeout", type=float, help="seconds for the whole collection (default: by budget)")
    c.add_argument("--fail-on", choices=FAIL_ON, default="error",
                   help="exit 1 when a finding is at or above this severity (default: error)")
    c.add_argument("--select", nargs="+", metavar="RULE", help="evaluate only these rules")
    c.add_argument("--ignore", nargs="+", metavar="RULE", default=[], help="skip these rules")
    c.add_argument("--rules-dir", type=Path, action="append", default=[], help="an extra directory of YAML rules")
    c.add_argument("--metrics", type=Path, help="judge a saved metrics.json instead of running the target")
    c.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and the collector's log")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    r = sub.add_parser("rules", help="list the rules")
    r.add_argument("--rules-dir", type=Path, action="append", default=[])
    e = sub.add_parser("explain", help="print one rule's documentation")
    e.add_argument("rule")
    e.add_argument("--rules-dir", type=Path, action="append", default=[])
    return p


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _split_target(target: str) -> tuple[str, Optional[str]]:
    """`model.py:factory` -> (model.py, factory); a bare path -> (path, None)."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier() and head:
        return head, tail
    return target, None


def _load_rules(dirs: list[Path]):
    from doctor.engine.loader import RuleError, load_rules  # noqa: PLC0415

    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"--rules-dir {d}: not a directory")
    try:
        return load_rules(dirs)
    except RuleError as exc:
        raise UsageError(f"rule error: {exc}") from exc


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def cmd_check(args: argparse.Namespace) -> int:
    from doctor.engine.evaluate import judge  # noqa: PLC0415
    from doctor.metrics import Metrics  # noqa: PLC0415
    from doctor.render import render, write_outputs  # noqa: PLC0415
    from doctor.report import Report, Severity, Status  # noqa: PLC0415

    t0 = time.perf_counter()
    rules = _load_rules(args.rules_dir)
    known = {r.id for r in rules}
    for rid in list(args.select or []) + list(args.ignore):
        if rid not in known:
            raise UsageError(f"unknown rule '{rid}' (see `doctor rules`)")
    if args.select:
        rules = [r for r in rules if r.id in set(args.select)]
    rules = [r for r in rules if r.id not in set(args.ignore)]

    path, factory = _split_target(args.target)
    log = ""
    if args.metrics:
        try:
            metrics = Metrics.model_validate_json(args.metrics.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--metrics {args.metrics}: cannot read a metrics document ({str(exc).splitlines()[0]})")
    else:
        if not os.path.isfile(path):
            _err(f"doctor: {path}: no such file")
            return ExitCode.TARGET
        from doctor.collect.budget import BUDGETS  # noqa: PLC0415
        from doctor.collect.spec import CollectSpec  # noqa: PLC0415
        from doctor.runner import collect  # noqa: PLC0415

        spec = CollectSpec(target=os.path.abspath(path), factory=factory, budget=args.budget, device=args.device,
                           seed=args.seed, static_only=args.static)
        timeout = args.timeout if args.timeout is not None else BUDGETS[args.budget].timeout_s
        if timeout <= 0:
            raise UsageError("--timeout must be positive")
        quiet = args.quiet

        def progress(step: str) -> None:
            if not quiet:
                _err(f"doctor: {step} ...")

        collected = collect(spec, timeout, progress=progress)
        metrics, log = collected.metrics, collected.log
        if collected.returncode == ExitCode.USAGE and metrics.errors:
            raise UsageError(metrics.errors[-1].message + (f" {metrics.errors[-1].hint}" if metrics.errors[-1].hint
                                                           else ""))

    judgement = judge(rules, metrics)
    findings = judgement.findings
    failed = bool(metrics.errors)
    threshold = None if args.fail_on == "never" else Severity(args.fail_on).rank
    gating = [f for f in findings if threshold is not None and f.severity.rank >= threshold]
    status = Status.failed if failed else (Status.findings if gating else Status.clean)
    report = Report(
        version=__version__, status=status, target=args.target, fail_on=args.fail_on,
        duration_s=round(time.perf_counter() - t0, 2), setup=metrics.setup, findings=findings,
        probes=metrics.probes, errors=metrics.errors, rules_evaluated=judgement.evaluated,
        rules_skipped=judgement.skipped, metrics=metrics,
    )

    out = render(report, args.format, color=_color(sys.stdout) and args.format == "text", verbose=args.verbose)
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    sys.stdout.flush()
    if args.output_dir:
        written = write_outputs(report, args.output_dir)
        if not args.quiet:
            _err(f"doctor: wrote {', '.join(str(p) for p in written)}")
    if args.format != "text" and not args.quiet:
        c = report.counts()
        _err(f"doctor: {status.value}: {c['error']} errors, {c['warning']} warnings, {c['info']} info")
    if failed and not args.quiet and args.format != "text":
        for e in metrics.errors:
            _err(f"doctor: {e.message}" + (f"\n  {e.hint}" if e.hint else ""))
    if args.verbose and log:
        _err("--- collector log ---\n" + log.rstrip())
    if failed:
        return ExitCode.TARGET
    return ExitCode.FINDINGS if gating else ExitCode.OK


def cmd_rules(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules_dir)
    width = max((len(r.id) for r in rules), default=4)
    for r in rules:
        print(f"{r.id:<{width}}  {r.severity.value:<7}  {r.symptom:<22}  {r.title}")
    return ExitCode.OK


def cmd_explain(args: argparse.Namespace) -> int:
    from doctor.engine.explain import explain  # noqa: PLC0415

    rules = {r.id: r for r in _load_rules(args.rules_dir)}
    if args.rule not in rules:
        raise UsageError(f"unknown rule '{args.rule}' (see `doctor rules`)")
    print(explain(rules[args.rule]))
    return ExitCode.OK


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
    try:
        return int(handler(args))
    except UsageError as exc:
        _err(f"doctor: {exc}")
        return ExitCode.USAGE
    except KeyboardInterrupt:
        _err("doctor: interrupted")
        return 130
    except BrokenPipeError:  # `doctor rules | head`: the reader left, nothing more to say
        sys.stderr.close()
        return ExitCode.OK
