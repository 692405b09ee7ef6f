"""--verify-fixes on the engine's side: which fixes to try, and what the re-measured metrics say about each."""

from __future__ import annotations

from typing import Optional

from doctor.engine.evaluate import judge
from doctor.engine.loader import Rule
from doctor.metrics import CATALOGUE, FixRequest, Metrics, Verification
from doctor.report import Finding, FixCheck

WORSE = 0.05  # a fix that silences the rule but leaves the loss 5% worse is only partial
BETTER = 0.10  # a fix that leaves the rule firing but improves the loss by 10% is partial
CAUSES_PER_FINDING = 2  # the top cause with a fix, and the next: if the first fails, the ranking can show it
VERIFIED = ("warning", "error")
# 0..1 scores (a loss swap's yardstick): better by 5 points, worse by 3 (about a standard error on 256 samples).
SCORES = {"fix.val_accuracy": "validation accuracy", "fix.val_auc": "mean per-label validation ROC AUC"}
SCORE_BETTER, SCORE_WORSE = 0.05, 0.03
# Fixes that act on what the rule measures (clipping bounds the gradient norm the burst records), so the
# rule going quiet proves nothing: the verdict rests on the loss alone.
LOSS_ONLY = frozenset({"clip-gradients"})


def _probes(rule: Rule) -> set[str]:
    names = set(rule.when.names)
    for cause in rule.causes:
        if cause.when is not None:
            names |= set(cause.when.names)
    return {CATALOGUE[n].probe for n in names if n in CATALOGUE and CATALOGUE[n].probe not in ("setup", "")}


def plan(rules: list[Rule], metrics: Metrics) -> list[FixRequest]:
    """The fixes to re-measure for what these metrics make fire: one request per fix kind, for every rule that names it."""
    by_id = {r.id: r for r in rules}
    out: dict[str, FixRequest] = {}
    for finding in judge(rules, metrics).findings:
        rule = by_id.get(finding.rule)
        if rule is None or finding.severity not in VERIFIED or finding.consequence_of:
            continue
        applies = {c.id: c.apply for c in rule.causes if c.apply}
        tried = 0
        for cause in finding.causes:
            fix = applies.get(cause.id)
            if fix is None or cause.status == "ruled_out":
                continue
            req = out.setdefault(fix, FixRequest(rule=rule.id, cause=cause.id, fix=fix, probes=["training_burst"]))
            req.probes = sorted(set(req.probes) | _probes(rule))
            tried += 1
            if tried == CAUSES_PER_FINDING:
                break
    return list(out.values())


def _overlay(before: Metrics, v: Verification) -> Metrics:
    """The first run's document with what the re-run measured in place of what its probes measured before."""
    rerun = {p.name for p in v.probes}
    probes = [p for p in before.probes if p.name not in rerun] + list(v.probes)
    return before.model_copy(update={"scalars": v.scalars, "layers": v.layers,
                                     "series": {**before.series, **v.series}, "probes": probes,
                                     "verifications": []})


def _still_fires(rule: Rule, finding: Finding, after: Metrics) -> Optional[bool]:
    j = judge([rule], after)
    if rule.id in j.skipped:
        return None
    return any(f.rule == rule.id and f.location.module == finding.location.module
               and f.location.label == finding.location.label for f in j.findings)


def _num(x) -> Optional[float]:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else None


def _compare(metric: str, b: Optional[float], a: Optional[float]) -> tuple[Optional[int], str]:
    """(+1 better, 0 about the same, -1 worse, None not comparable) and the words for it."""
    if metric == "loss.train_rel_drop":  # higher is better, in points of the starting loss
        if a is None:
            return None, "the loss's descent could not be measured with the fix"
        if b is None:
            return 1, f"the training loss fell {a:.0%} (before, no finite training curve was measured)"
        return ((1 if a > b + BETTER else -1 if a < b - WORSE else 0),
                f"the training loss fell {a:.0%} against {b:.0%} before")
    if metric in SCORES:  # higher is better, in points of a 0..1 score
        name = SCORES[metric]
        if a is None:
            return None, f"the {name} could not be measured with the fix"
        if b is None:
            return 1, f"the {name} reaches {a:.3g} (as it was, the training step raised or gave no finite score)"
        return ((1 if a > b + SCORE_BETTER else -1 if a < b - SCORE_WORSE else 0),
                f"the {name} reaches {a:.3g} against {b:.3g} as it was")
    if metric == "epoch.last_batch_trains":  # a yes/no the fix measured itself, before and after
        if a is None or b is None:
            return None, "the epoch's last batch could not be tried"
        if a != b:
            return (1, "the epoch's last batch trains, where it raised before") if a > b else (
                -1, "the epoch's last batch raises now, where it trained before")
        return 0, f"the epoch's last batch {'trains' if a else 'raises'} as before"
    if a is None:
        return None, "the training loss was not finite with the fix either" if b is None else "no loss was measured"
    if b is None:
        return 1, f"the training loss stays finite and ends at {a:.3g} (before, it became NaN or infinite)"
    better = a < b * (1 - BETTER) if b > 0 else a < b - BETTER * abs(b)
    worse = a > b * (1 + WORSE) if b > 0 else a > b + WORSE * abs(b)
    return (1 if better else -1 if worse else 0), f"the training loss ends at {a:.3g} against {b:.3g} before"


def _headline(scalars: dict, metric: str) -> Optional[float]:
    """The compared value; a final loss from a burst that went NaN or infinite counts as none."""
    if metric == "loss.train_end" and scalars.get("loss.nonfinite"):
        return None
    x = scalars.get(metric)
    return float(x) if isinstance(x, bool) else _num(x)  # a yes/no headline compares as 1/0


def check(rule: Rule, finding: Finding, cause: str, v: Verification, before: Metrics) -> FixCheck:
    """The verdict on one fix for one finding, with the numbers it rests on."""
    b = _headline({**before.scalars, **v.baseline} if v.metric in v.baseline else before.scalars, v.metric)
    a = _headline(v.scalars, v.metric)
    fc = FixCheck(fix=v.request.fix, cause=cause, applied=v.applied, cost_s=v.duration_s, metric=v.metric,
                  before=b, after=a, edits=v.edits, diff=v.diff)
    if v.error:
        fc.summary = (f"With {v.applied}: {v.error}." if v.applied else f"{v.error[0].upper()}{v.error[1:]}.")
        return fc
    fc.still_fires = _still_fires(rule, finding, _overlay(before, v))
    gain, moved = _compare(v.metric, b, a)
    steps = v.scalars.get("grad.steps")
    if steps and any(p.name == "training_burst" for p in v.probes):
        moved += f" ({steps}-step burst)"
    if v.request.fix in LOSS_ONLY:
        fc.verdict = "confirmed" if gain == 1 else "partial" if gain == 0 else "not confirmed"
        said = "the gradient it measures is the clipped one, so the loss decides"
    elif fc.still_fires is False:
        # Quiet and the loss better: confirmed. Quiet with the loss about the same: partial (the measure
        # moved, training did not). Quiet but the loss worse: the symptom moved elsewhere, not confirmed.
        fc.verdict = "confirmed" if gain in (1, None) else "partial" if gain == 0 else "not confirmed"
        said = f"{rule.id} no longer fires" + (", but training got worse" if gain == -1 else "")
    else:  # still fires, or could not be judged again: only a clearly better loss earns anything
        fc.verdict = "partial" if gain == 1 else "not confirmed"
        said = f"{rule.id} {'still fires' if fc.still_fires else 'could not be judged again'}"
    fc.summary = f"With {v.applied}, {said}; {moved}." + (f" Measured: {v.note}." if v.note else "")
    if fc.verdict == "not confirmed":  # a change that did not help is not suggested as a diff
        fc.diff, fc.edits = "", []
    return fc


_ORDER = {"confirmed": 0, "partial": 1, None: 2, "not confirmed": 3}


def _rank(cause) -> tuple[int, float]:
    """By verdict; among confirmed fixes, the one whose final loss fell furthest against before first."""
    v = cause.verification
    if v is None:
        return _ORDER[None], 1.0
    ratio = v.after / v.before if v.verdict == "confirmed" and v.after is not None and v.before else 1.0
    return _ORDER[v.verdict], ratio if v.metric == "loss.train_end" else 1.0


def attach(findings: list[Finding], rules: list[Rule], metrics: Metrics) -> None:
    """Give each finding the verdicts on its causes' fixes, and re-rank the causes by them.

    A confirmed fix moves its cause to the top; a fix that is not confirmed moves its cause below the
    causes still standing (above those ruled out), with its verdict beside it.
    """
    if not metrics.verifications:
        return
    by_fix = {v.request.fix: v for v in metrics.verifications if not v.not_applicable}
    by_id = {r.id: r for r in rules}
    for finding in findings:
        rule = by_id.get(finding.rule)
        if rule is None:
            continue
        applies = {c.id: c.apply for c in rule.causes if c.apply}
        seen: set[str] = set()
        for cause in finding.causes:
            v = by_fix.get(applies.get(cause.id, ""))
            if v is None or cause.status == "ruled_out" or v.request.fix in seen:
                continue  # a fix two causes share is shown once, under the higher-ranked
            seen.add(v.request.fix)
            cause.verification = check(rule, finding, cause.id, v, metrics)
            if finding.verification is None:
                finding.verification = cause.verification
        if not any(c.verification for c in finding.causes):
            continue
        standing = sorted((c for c in finding.causes if c.status != "ruled_out"), key=_rank)  # stable among equals
        finding.causes = standing + [c for c in finding.causes if c.status == "ruled_out"]
