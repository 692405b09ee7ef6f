"""Renderers: text, JSON, Markdown and HTML from a hand-built Report, without torch."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from doctor.metrics import ErrorRecord, Metrics, ProbeRecord, ProbeStatus, Series, SetupInfo
from doctor.render import FORMATS, render, write_outputs
from doctor.render.charts import bar_chart, line_chart
from doctor.render.jsonout import render_json
from doctor.render.markdown import render_markdown
from doctor.render.text import render_text
from doctor.report import Evidence, Finding, Location, RankedCause, Report, Severity, Status

EVIL = "blocks.<script>alert(1)</script>"


def _layers(n: int) -> list[str]:
    names = ["conv1"]
    for stage in range(1, 5):
        for block in range(2):
            for part in ("conv1", "conv2"):
                names.append(f"layer{stage}.{block}.{part}")
    names += [f"extra.{i}.conv" for i in range(n - len(names) - 2)]
    return names + [EVIL, "fc"]


def make_metrics() -> Metrics:
    steps = list(range(0, 200))
    train = [2.30 * math.exp(-s / 60) + 0.35 + 0.05 * math.sin(s / 3) for s in steps]
    val_x = list(range(0, 200, 25))
    val = [2.3, 1.2, 0.8, 0.7, 0.72, 0.8, 0.9, 1.0]
    layers = _layers(24)
    # Gradient norms fall over seven decades from the output back to the input: vanishing gradients.
    grad = [10 ** (-6 + 7 * i / (len(layers) - 1)) for i in range(len(layers))]
    relus = [f"layer{s}.{b}.relu" for s in range(1, 5) for b in range(2)] + [EVIL]
    dead = [0.02, 0.05, 0.62, 0.71, 0.1, 0.0, 0.3, 0.55, 0.9]
    return Metrics(
        target="examples/mnist_mlp.py",
        seed=0,
        duration_s=12.3,
        series={
            "loss.train": Series(x=steps, y=train, y_label="loss", reference=math.log(10)),
            "loss.val": Series(x=val_x, y=val, y_label="loss"),
            "grad.norm_by_layer": Series(x=layers, y=grad, x_label="layer", y_label="gradient norm"),
            "act.dead_frac_by_layer": Series(x=relus, y=dead, x_label="layer", y_label="dead fraction"),
            "data.class_counts": Series(x=[str(c) for c in range(10)], y=[5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 60], x_label="class", y_label="samples"),
        },
        scalars={"init.loss": 2.31, "init.expected_loss": math.log(10), "grad.depth_ratio": 1e-6, "setup.lr": 0.1},
        layers={"layer1.0.relu": {"act.dead_frac": 0.62, "act.kind": "relu"}, EVIL: {"act.dead_frac": 0.9}},
        layer_types={"layer1.0.relu": "ReLU", EVIL: "ReLU"},
    )


def make_report(metrics: Metrics | None = None) -> Report:
    metrics = metrics if metrics is not None else make_metrics()
    info = Finding(
        rule="class-imbalance",
        symptom="class_imbalance",
        severity=Severity.info,
        message="Class 9 has 60 samples, 112× fewer than class 1.",
        evidence=[Evidence(name="data.class_ratio", value=112.4, unit="x")],
        charts=["data.class_counts"],
        causes=[RankedCause(id="skewed-source", text="The data source is skewed.", fixes=["Weight the loss by inverse class frequency."])],
    )
    warning = Finding(
        rule="overfitting",
        symptom="overfitting",
        severity=Severity.warning,
        message="Validation loss rose 1.43× above its minimum while training loss kept falling.",
        evidence=[Evidence(name="loss.val_rise", value=1.43, unit="x")],
        charts=["loss.val"],  # the renderer pairs it with loss.train
        causes=[
            RankedCause(id="no-regularisation", text="No dropout or weight decay.", status="possible", fixes=["Add weight decay (1e-4)."]),
            RankedCause(id="tiny-dataset", text="Too few training samples for the model size.", status="unknown"),
        ],
    )
    dead = Finding(
        rule="dead-relu",
        symptom="dead_relu",
        severity=Severity.error,
        message="62% of units in layer1.0.relu are dead (active on fewer than 1% of inputs).",
        location=Location(module="layer1.0.relu", file="examples/mnist_mlp.py", line=42),
        evidence=[Evidence(name="act.dead_frac", value=0.62, unit="fraction")],
        charts=["act.dead_frac_by_layer"],
        causes=[
            RankedCause(
                id="lr-too-high",
                text="The learning rate is high enough to push units permanently negative.",
                status="supported",
                evidence=[Evidence(name="setup.lr", value=0.1)],
                fixes=["Lower the learning rate 10×.", "Use LeakyReLU or GELU."],
            ),
            RankedCause(id="bad-init", text="Weights were initialised for tanh, not ReLU.", status="ruled_out", evidence=[Evidence(name="static.init_gain", value=1.41)]),
        ],
    )
    vanish = Finding(
        rule="vanishing-gradients",
        symptom="vanishing_gradients",
        severity=Severity.error,
        message="Gradients at conv1 are 1.0e-06× those at the output.",
        location=Location(module="conv1"),
        evidence=[Evidence(name="grad.depth_ratio", value=1e-6, unit="x"), Evidence(name="loss.nonfinite", value=False)],
        charts=["grad.norm_by_layer", "loss.train"],
        causes=[RankedCause(id="saturating", text="Deep sigmoid stack.", status="supported", fixes=["Use ReLU with He init."])],
    )
    return Report(
        version="0.1.0",
        status=Status.findings,
        target="examples/mnist_mlp.py",
        duration_s=12.3,
        setup=SetupInfo(
            target="examples/mnist_mlp.py", model_class="MLP", task="classification", loss="CrossEntropyLoss",
            optimizer="Adam(lr=0.001)", batch_size=32, device="cpu", defaults_used=["optimizer: Adam(lr=1e-3)", "batch_size: 32"],
        ),
        # Deliberately not in severity order: the renderers must sort.
        findings=[info, warning, dead, vanish],
        probes=[
            ProbeRecord(name="init_loss", status=ProbeStatus.ran, duration_s=0.4, measures=["init.loss"]),
            ProbeRecord(name="gradient_flow", status=ProbeStatus.ran, duration_s=2.1),
            ProbeRecord(name="data_stats", status=ProbeStatus.skipped, reason="the target provides no validation data"),
            ProbeRecord(name="overfit_batch", status=ProbeStatus.failed, reason="RuntimeError: shape mismatch", location="examples/mnist_mlp.py:57", duration_s=0.8),
        ],
        errors=[
            ErrorRecord(kind="probe", probe="overfit_batch", message="forward raised RuntimeError: mat1 and mat2 shapes cannot be multiplied",
                        hint="Check the input size of the first Linear layer.", file="examples/mnist_mlp.py", line=57,
                        traceback='Traceback (most recent call last):\n  File "examples/mnist_mlp.py", line 57\nRuntimeError: SECRET-TRACE'),
        ],
        rules_evaluated=41,
        metrics=metrics,
    )


# ---------------------------------------------------------------- helpers

SEVERITY_ORDER = ["error", "error", "warning", "info"]


def _cards(html: str) -> dict[str, str]:
    """Each finding card's HTML, keyed by its rule id."""
    cards = re.findall(r'<article class="finding[^"]*"[^>]*>.*?</article>', html, re.S)
    return {re.search(r'<code class="rule">([^<]+)</code>', c).group(1): c for c in cards}


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}".*?</section>', html, re.S).group(0)


def _svgs(fragment: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", fragment, re.S)


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render(report, "html")


# ---------------------------------------------------------------- JSON


def test_json_has_required_fields_most_severe_first(report: Report) -> None:
    data = json.loads(render_json(report))
    assert data["schema_version"] == 1
    assert data["status"] == "findings"
    assert data["counts"] == {"error": 2, "warning": 1, "info": 1}
    assert [f["severity"] for f in data["findings"]] == SEVERITY_ORDER
    for f in data["findings"]:
        assert {"rule", "symptom", "severity", "message", "location", "evidence", "causes"} <= f.keys()
        assert {"module", "file", "line"} <= f["location"].keys()
        for c in f["causes"]:
            assert isinstance(c["fixes"], list) and c["status"] in {"supported", "possible", "unknown", "ruled_out"}
    dead = next(f for f in data["findings"] if f["rule"] == "dead-relu")
    assert dead["location"].items() >= {"module": "layer1.0.relu", "file": "examples/mnist_mlp.py", "line": 42}.items()
    assert dead["evidence"][0] == {"name": "act.dead_frac", "value": 0.62, "unit": "fraction"}
    probes = {p["name"]: p for p in data["probes"]}
    assert probes["data_stats"]["status"] == "skipped" and probes["data_stats"]["reason"]
    assert probes["overfit_batch"]["status"] == "failed" and "shape" in probes["overfit_batch"]["reason"]
    assert data["errors"][0]["hint"] and data["setup"]["defaults_used"]
    assert "metrics" not in data  # written separately as metrics.json
    assert render(report, "json") == render_json(report)


def test_json_keeps_the_collector_traceback_for_verbose_only() -> None:
    r = make_report(Metrics())
    r.errors = [r.errors[0].model_copy(update={"traceback": 'Traceback (most recent call last):\n  File "x.py"'})]
    assert "traceback" not in json.loads(render_json(r))["errors"][0]
    assert json.loads(render(r, "json", verbose=True))["errors"][0]["traceback"].startswith("Traceback")


def test_json_is_strict_even_with_nan_evidence() -> None:
    r = make_report(Metrics())
    r.findings[0].evidence.append(Evidence(name="init.loss", value=float("nan")))
    r.findings[0].evidence.append(Evidence(name="grad.total_norm_max", value=float("inf")))

    def reject(const: str) -> None:
        raise AssertionError(f"non-standard JSON constant {const}")

    data = json.loads(render_json(r), parse_constant=reject)
    values = [e["value"] for f in data["findings"] for e in f["evidence"]]
    assert "nan" in values and "inf" in values


# ---------------------------------------------------------------- HTML


def test_html_is_self_contained(html: str) -> None:
    assert "<script" not in html.lower()  # no JavaScript, and the hostile layer name is escaped
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    # The only absolute URL allowed is the SVG namespace, which is a name, not a fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert "<style>" in html and ".finding" in html  # the CSS is inlined


def test_html_orders_findings_and_puts_charts_in_their_cards(html: str) -> None:
    cards = _cards(html)
    assert list(cards) == ["dead-relu", "vanishing-gradients", "overfitting", "class-imbalance"]
    assert [len(_svgs(c)) for c in cards.values()] == [1, 2, 1, 1]
    dead = _svgs(cards["dead-relu"])[0]
    assert "Dead units by layer" in dead and "threshold 0.5" in dead
    assert 'fill="#D55E00"' in dead and 'fill="#0072B2"' in dead  # above and below the threshold differ
    # loss.val alone was asked for: it is drawn with loss.train, and the expected loss is labelled.
    loss = _svgs(cards["overfitting"])[0]
    assert ">train<" in loss and ">validation<" in loss and "expected ln(10)=2.30" in loss
    assert "examples/mnist_mlp.py:42" in cards["dead-relu"]
    assert "Adam(lr=1e-3)" in html and "CrossEntropyLoss" in html  # setup and defaults_used


def test_html_uses_log_scale_for_gradients(html: str) -> None:
    grad = next(s for s in _svgs(_cards(html)["vanishing-gradients"]) if "Gradient norm by layer" in s)
    assert "log scale" in grad
    assert "10⁻⁶" in grad or "10⁻⁷" in grad  # ticks reach down to the smallest decade
    assert grad.count("<rect") == 24


def test_html_escapes_layer_names(html: str) -> None:
    assert "<script>alert(1)</script>" not in html
    assert "&lt;/script&gt;" in html


def test_html_measured_section_and_probes(html: str) -> None:
    measured = _section(html, "measured")
    assert len(_svgs(measured)) == 4  # loss (train+val), gradients, dead units, class counts
    probes = _section(html, "probes")
    assert "skipped" in probes and "failed" in probes and "the target provides no validation data" in probes
    errors = _section(html, "errors")
    assert "Check the input size" in errors and "SECRET-TRACE" in errors  # traceback folded in <details>


def test_html_without_findings_still_shows_measurements() -> None:
    r = Report(target="ok.py", metrics=make_metrics(), rules_evaluated=12)
    page = render(r, "html")
    assert "No findings" in page
    assert len(_svgs(_section(page, "measured"))) == 4


def test_html_is_deterministic(report: Report) -> None:
    assert render(report, "html") == render(report, "html")


# ---------------------------------------------------------------- Markdown


def _prose(md: str) -> str:
    """Markdown with fenced blocks and code spans removed: what a renderer would parse as HTML."""
    md = re.sub(r"```.*?```", "", md, flags=re.S)
    return re.sub(r"(`+).*?\1", "", md)


def test_markdown_has_sparklines_and_no_images(report: Report) -> None:
    md = render_markdown(report)
    assert re.search(r"[▁▂▃▄▅▆▇█]{8,}", md)
    assert "data:" not in md and "<img" not in md and "![" not in md
    assert len(md.encode()) < 1 << 20
    assert "<script" not in _prose(md)
    assert "<details>" in md
    order = [md.index(f": {rule}\n") for rule in ("dead-relu", "vanishing-gradients", "overfitting", "class-imbalance")]
    assert order == sorted(order)
    assert "skipped" in md and "the target provides no validation data" in md


def test_markdown_stays_under_one_mebibyte_on_huge_input() -> None:
    names = [f"encoder.layers.{i}.mlp.fc{j}" for i in range(2000) for j in (1, 2)]
    m = make_metrics()
    m.series["grad.norm_by_layer"] = Series(x=names, y=[1e-3 * (1 + i % 7) for i in range(len(names))], x_label="layer")
    m.series["loss.train"] = Series(x=list(range(200_000)), y=[1.0 / (1 + i) for i in range(200_000)])
    r = make_report(m)
    r.errors[0].traceback = "x" * 2_000_000
    r.findings = r.findings * 50
    md = render_markdown(r)
    assert len(md.encode()) < 1 << 20


# ---------------------------------------------------------------- text


def test_text_orders_by_severity_without_ansi(report: Report) -> None:
    out = render_text(report)
    assert "\x1b" not in out
    heads = [ln.split()[0] for ln in out.splitlines() if ln.split() and ln.split()[0] in ("error", "warning", "info")]
    assert heads == SEVERITY_ORDER
    assert out.index("dead-relu") < out.index("overfitting")
    assert "ruled out" in out and "static.init_gain = 1.41" in out  # why it was ruled out
    assert "skipped  data_stats: the target provides no validation data" in out
    assert "hint: Check the input size" in out and "SECRET-TRACE" not in out
    assert out.rstrip().splitlines()[-1] == "2 errors, 1 warning, 1 info — 2 probes ran, 1 skipped, 1 failed (took 12.3 s)"


def test_text_folds_many_probes_skipped_for_one_reason(report: Report) -> None:
    names = ["data_stats", "init_loss", "gradient_flow", "lr_range", "overfit_batch"]
    report.probes = [ProbeRecord(name="static", status=ProbeStatus.ran, duration_s=0.1)] + [
        ProbeRecord(name=n, status=ProbeStatus.skipped, reason="--static") for n in names]
    report.probes.append(ProbeRecord(name="custom_step", status=ProbeStatus.skipped, reason="no train_step"))
    out = render_text(report)
    assert "skipped  5 probes: --static (-v lists them)" in out
    assert "skipped  custom_step: no train_step" in out  # a reason given once is shown as it is
    assert "init_loss" not in out
    assert "1 probe ran, 6 skipped" in out
    verbose = render_text(report, verbose=True)
    assert all(f"skipped  {n}: --static" in verbose for n in names)


def test_text_colour_and_verbose_are_opt_in(report: Report) -> None:
    assert "\x1b[" in render_text(report, color=True)
    assert "SECRET-TRACE" in render_text(report, verbose=True)


# ---------------------------------------------------------------- charts


def test_line_chart_gaps_and_marks_non_finite() -> None:
    y = [3.0, 2.0, None, float("nan"), 1.0, 0.5]
    svg = line_chart([("train", Series(x=list(range(6)), y=y, y_label="loss"))], "Loss")
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg
    path = re.search(r'<path d="([^"]+)" fill="none"', svg).group(1)
    assert path.count("M") == 2  # the curve breaks at the gap instead of bridging it
    assert "non-finite from step 2" in svg and "2 non-finite" in svg


def test_bar_chart_handles_many_layers_and_tooltips() -> None:
    names = [f"features.denseblock{b}.denselayer{i}.conv2" for b in range(4) for i in range(30)]
    svg = bar_chart(Series(x=names, y=[0.1 + i / 200 for i in range(120)], x_label="layer"), "Dead", threshold=0.5)
    assert svg.count("</rect>") == 120  # bars carry a tooltip; legend swatches do not
    assert all(n in svg for n in names)  # every full name is in a tooltip even when labels are cut
    assert "every 2nd labelled" in svg


def test_bar_chart_switches_to_log_when_values_span_decades() -> None:
    s = Series(x=["a", "b", "c"], y=[1e-4, 1e-2, 1.0])
    assert "log scale" in bar_chart(s, "spread")
    assert "log scale" not in bar_chart(Series(x=["a", "b"], y=[1.0, 5.0]), "narrow")


# ---------------------------------------------------------------- API


def test_empty_report_renders_in_every_format(tmp_path: Path) -> None:
    empty = Report()
    for fmt in FORMATS:
        # GitHub annotations are one line per finding: nothing to annotate is no output at all.
        assert render(empty, fmt).strip() or fmt == "github"
    assert render(empty, "github") == ""
    assert "No findings" in render(empty, "html") and "No findings" in render(empty, "markdown")
    assert json.loads(render(empty, "json"))["findings"] == []
    written = write_outputs(empty, tmp_path / "out")
    assert sorted(p.name for p in written) == ["junit.xml", "report.html", "report.json", "report.md", "report.sarif"]


def test_write_outputs_writes_metrics_that_read_back(report: Report, tmp_path: Path) -> None:
    written = write_outputs(report, tmp_path / "deep" / "dir")
    assert sorted(p.name for p in written) == ["junit.xml", "metrics.json", "report.html", "report.json", "report.md",
                                               "report.sarif", "tb"]
    back = Metrics.model_validate_json((tmp_path / "deep" / "dir" / "metrics.json").read_text())
    assert back.series["grad.norm_by_layer"].x[-2] == EVIL


def test_unknown_format_is_a_clear_error(report: Report) -> None:
    with pytest.raises(ValueError, match="html"):
        render(report, "pdf")


def test_class_scoped_finding_names_its_class(report: Report) -> None:
    r = report.model_copy(deep=True)
    r.findings[0].location = Location(label="9")
    assert re.search(r"^info +class-imbalance +class 9 ", render_text(r), re.M)
    assert "<code>class 9</code>" in _cards(render(r, "html"))["class-imbalance"]


# ---------------------------------------------------------------- CI formats


def test_markdown_cuts_at_a_line_when_even_the_short_form_is_too_long() -> None:
    r = make_report()
    many = r.findings[0].model_copy(update={"message": "m" * 400, "charts": []})
    r.findings = [many] * 5000
    md = render_markdown(r)
    assert len(md.encode()) < 1 << 20
    assert md.rstrip().endswith("the HTML and JSON reports have everything._")


def test_markdown_shows_baseline_and_suppressions(report: Report) -> None:
    from doctor.report import BaselineEntry, BaselineInfo, Suppression

    r = report.model_copy(deep=True)
    r.findings[0].baseline = "unchanged"
    r.baseline = BaselineInfo(file="doctor-baseline.json", known=1, new=3,
                              absent=[BaselineEntry(fingerprint="f", rule="init-loss", subject="")])
    r.suppressed = [r.findings[-1].model_copy(update={"suppressed_by": "m.py:3"})]
    r.unused_suppressions = [Suppression(file="m.py", line=9, rules=["nan-loss"], problem="unused: nan-loss did not fire")]
    md = render_markdown(r)
    assert "(baseline)" in md and "1 known (not failing), **3 new**, 1 no longer occur" in md
    assert "<details><summary>1 suppressed · 1 note on suppression comments</summary>" in md
    assert "`m.py:9`: unused: nan-loss did not fire" in md


def test_github_annotations_are_capped_escaped_and_most_severe_first(report: Report) -> None:
    from doctor.render.github import MAX_ANNOTATIONS, annotations

    r = report.model_copy(deep=True)
    odd = r.findings[0].model_copy(update={"message": "50% dead,\nsee: a,b"})
    r.findings = [f.model_copy() for f in r.findings] * 5 + [odd]
    lines, left = annotations(r)
    assert len(lines) == MAX_ANNOTATIONS and left == len(r.findings) + len(r.errors) - MAX_ANNOTATIONS
    levels = [ln[2:].split(" ", 1)[0].split("::", 1)[0] for ln in lines]
    rank = {"error": 0, "warning": 1, "notice": 2}
    assert [rank[x] for x in levels] == sorted(rank[x] for x in levels)
    dead = next(ln for ln in lines if "dead-relu" in ln)
    assert dead.startswith("::error file=examples/mnist_mlp.py,line=42,title=doctor dead-relu (layer1.0.relu)::")
    only_odd = r.model_copy(update={"findings": [odd], "errors": []})
    (line,) = annotations(only_odd)[0]
    assert "50% dead,%0Asee: a,b" in line.replace("%25", "%")  # data: %, CR, LF escaped; ',' and ':' kept
    assert "\n" not in line


def test_github_annotation_properties_escape_commas_and_colons() -> None:
    from doctor.render.github import annotation

    assert annotation("warning", "m", file="a,b:c.py", line=3, title="t: x, y") == \
        "::warning file=a%2Cb%3Ac.py,line=3,title=t%3A x%2C y::m"


def test_html_shows_baseline_and_suppressions_escaped(report: Report) -> None:
    from doctor.report import BaselineInfo, Suppression

    r = report.model_copy(deep=True)
    r.findings[0].baseline = "unchanged"
    r.baseline = BaselineInfo(file="b.json", known=1, new=2)
    r.suppressed = [r.findings[1].model_copy(update={"suppressed_by": "m.py:3"})]
    r.unused_suppressions = [Suppression(file="<m>.py", line=3, problem="unused <x>")]
    page = render(r, "html")
    assert "in baseline" in page and "Suppressed and baseline" in page and "suppressed at" in page
    assert "&lt;m&gt;.py:3" in page and "<m>.py" not in page
