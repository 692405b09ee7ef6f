"""Inline SVG line and bar charts drawn from metrics Series: no JavaScript, no external assets."""

from __future__ import annotations

import math
from html import escape
from typing import Optional, Sequence

from doctor.metrics import Series

# Okabe-Ito palette: stays distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
# Each curve also gets its own dash pattern, so colour is never the only cue.
DASHES = ("", "7 4", "2 3", "9 3 2 3")
HIGH = "#D55E00"  # bars over the threshold, non-finite markers
LOW = "#0072B2"
INK = "#1f2328"
MUTED = "#59636e"
GRID = "#e8eaed"
AXIS = "#8c959f"
FONT = 11
CHAR_W = 0.6  # average glyph width in em, for layout estimates (no font metrics without a browser)
FONT_FAMILY = "system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
MAX_POINTS = 1200  # per curve; longer curves are reduced to per-bucket min/max so spikes survive
LOG_SPAN = 100.0  # bar values spanning more than two decades switch to a log axis
CURVE_LOG_SPAN = 1e3  # curves need three: a loss falling from 2.3 to 0.01 still reads best linear
LABEL_CHARS = 26

_SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _e(s: object) -> str:
    return escape(str(s), quote=True)


def _c(v: float) -> str:
    """A coordinate, short: SVG size grows with every digit."""
    return f"{v:.1f}".rstrip("0").rstrip(".")


def is_finite(v: object) -> bool:
    """A real number that is not NaN or infinite (bools and None are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: Optional[float]) -> str:
    """A value for a label or tooltip: 4 significant digits, scientific when very large or small."""
    if v is None:
        return "n/a"
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        m, ex = f"{v:.2e}".split("e")
        return f"{float(m):g}e{int(ex)}"
    # Fixed point with 4 significant digits: "%g" would write 10000 as "1e+04".
    s = f"{v:.{max(0, 3 - math.floor(math.log10(abs(v))))}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def spans_decades(values: Sequence[Optional[float]], ratio: float) -> bool:
    """True when the finite values are all positive and the largest exceeds the smallest `ratio` times."""
    vals = [v for v in values if is_finite(v)]
    return len(vals) >= 2 and min(vals) > 0 and max(vals) / min(vals) > ratio


def _text_w(s: str, size: float = FONT) -> float:
    return len(s) * size * CHAR_W


def _truncate(s: str, n: int = LABEL_CHARS) -> str:
    # Keep the tail: in "features.denseblock4.denselayer16.conv2" the end is what tells layers apart.
    return s if len(s) <= n else "…" + s[-(n - 1):]


# ---------------------------------------------------------------- scales and ticks


def _nice_step(span: float, n: int) -> float:
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10 * mag


def _linear_ticks(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float], float]:
    if hi - lo <= abs(hi) * 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, n)
    lo2 = math.floor(lo / step + 1e-9) * step
    hi2 = math.ceil(hi / step - 1e-9) * step
    ticks = [round((lo2 + i * step) / step) * step for i in range(int(round((hi2 - lo2) / step)) + 1)]
    return lo2, hi2, ticks, step


def _tick_label(t: float, step: float) -> str:
    if t == 0:
        return "0"
    if abs(t) >= 1e5 or step < 1e-3:
        return fmt(t)
    dec = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step * 10**dec - round(step * 10**dec)) > 1e-6:  # 2.5, 0.25 …
        dec += 1
    return f"{t:.{dec}f}"


def _log_ticks(lo: float, hi: float) -> tuple[float, float, list[tuple[float, str]]]:
    a = math.floor(math.log10(lo) + 1e-9)
    b = math.ceil(math.log10(hi) - 1e-9)
    if b <= a:
        b = a + 1
    stride = max(1, math.ceil((b - a) / 7))
    b = a + stride * math.ceil((b - a) / stride)
    sup = (b - a) > 3 or a < -3 or b > 5
    ticks = [(10.0**e, f"10{str(e).translate(_SUP)}" if sup else fmt(10.0**e)) for e in range(a, b + 1, stride)]
    if b - a == 1:  # a single decade: 2 and 5 give the eye something to read against
        ticks += [(m * 10.0**a, fmt(m * 10.0**a)) for m in (2, 5)]
    return 10.0**a, 10.0**b, ticks


class _Scale:
    """Maps data values to pixels, linear or log10."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False):
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        self.p0, self.p1 = p0, p1

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log10(v)
        span = self.hi - self.lo or 1.0
        return self.p0 + (v - self.lo) / span * (self.p1 - self.p0)


# ---------------------------------------------------------------- frame


def _open(w: float, h: float, title: str, desc: str) -> list[str]:
    # <title> and <desc> as first children name and describe the image to screen readers
    # (SVG-AAM) without ids, so one chart can appear twice on a page (in a finding and under
    # "What was measured") and be drawn once.
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {_c(w)} {_c(h)}" '
        f'width="{_c(w)}" height="{_c(h)}" role="img" font-family="{_e(FONT_FAMILY)}" font-size="{FONT}">',
        f"<title>{_e(title)}</title><desc>{_e(desc)}</desc>",
        f'<text x="4" y="15" font-size="12.5" font-weight="600" fill="{INK}" aria-hidden="true">{_e(title)}</text>',
    ]


def _y_axis(out: list[str], ys: _Scale, ticks: list[tuple[float, str]], x0: float, x1: float, label: str, top: float, bottom: float) -> None:
    for v, lab in ticks:
        y = ys(v)
        out.append(f'<line x1="{_c(x0)}" x2="{_c(x1)}" y1="{_c(y)}" y2="{_c(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{_c(x0 - 5)}" y="{_c(y + 3.5)}" text-anchor="end" fill="{MUTED}">{_e(lab)}</text>')
    out.append(f'<line x1="{_c(x0)}" x2="{_c(x0)}" y1="{_c(top)}" y2="{_c(bottom)}" stroke="{AXIS}"/>')
    if label:
        cy = (top + bottom) / 2
        room = bottom - top
        size = FONT if _text_w(label) <= room else 10
        shown = label if _text_w(label, size) <= room else label[: max(4, int(room / (size * CHAR_W)) - 1)] + "…"
        out.append(
            f'<text transform="translate(12 {_c(cy)}) rotate(-90)" text-anchor="middle" font-size="{size}" fill="{MUTED}">'
            f"{_e(shown)}{'<title>' + _e(label) + '</title>' if shown != label else ''}</text>"
        )


def _hline(out: list[str], y: float, x0: float, x1: float, label: str, color: str = MUTED) -> None:
    out.append(f'<line x1="{_c(x0)}" x2="{_c(x1)}" y1="{_c(y)}" y2="{_c(y)}" stroke="{color}" stroke-width="1.2" stroke-dasharray="5 4"/>')
    if label:
        # A white halo keeps the label legible where it crosses a curve or a bar.
        out.append(
            f'<text x="{_c(x1 - 4)}" y="{_c(y - 4)}" text-anchor="end" fill="{color}" font-size="10.5" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{_e(label)}</text>'
        )


def _legend(out: list[str], items: list[tuple[str, str, str, str]], title: str, width: float) -> float:
    """Draw legend entries (label, colour, dash, "box"|"line"); return where the plot may start.

    On the title's row, right-aligned, when they fit; otherwise in as many rows as they need under it.
    """
    def item_w(it: tuple[str, str, str, str]) -> float:
        return (14 if it[3] == "box" else 24) + _text_w(it[0], 10.5)

    gap = 12.0
    total = sum(item_w(it) for it in items) + gap * (len(items) - 1)
    if _text_w(title, 12.5) + 24 + total <= width - 14:
        rows, x, y = [(width - 14 - total, 11.0, items)], 0.0, 0.0
    else:
        rows, row, x = [], [], 0.0
        for it in items:
            if row and x + item_w(it) > width - 18:
                rows.append(row)
                row, x = [], 0.0
            row.append(it)
            x += item_w(it) + gap
        rows.append(row)
        rows = [(4.0, 32.0 + 15 * i, r) for i, r in enumerate(rows)]
    for x, y, row in rows:
        for label, color, dash, kind in row:
            if kind == "box":
                out.append(f'<rect x="{_c(x)}" y="{_c(y - 5)}" width="10" height="10" rx="1.5" fill="{color}"/>')
                tx = x + 14
            else:
                d = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<line x1="{_c(x)}" x2="{_c(x + 20)}" y1="{_c(y)}" y2="{_c(y)}" stroke="{color}" stroke-width="2"{d}/>')
                tx = x + 24
            out.append(f'<text x="{_c(tx)}" y="{_c(y + 4)}" font-size="10.5" fill="{INK}">{_e(label)}</text>')
            x = tx + _text_w(label, 10.5) + gap
    return 30.0 if rows[0][1] == 11.0 else rows[-1][1] + 16


def empty_chart(title: str, note: str = "no data") -> str:
    """A small placeholder that says why there is nothing to draw."""
    out = _open(320, 70, title, note)
    out.append(f'<text x="4" y="45" fill="{MUTED}">{_e(note)}</text></svg>')
    return "".join(out)


# ---------------------------------------------------------------- line chart


def _decimate(xs: list[float], ys: list[Optional[float]]) -> tuple[list[float], list[Optional[float]]]:
    n = len(xs)
    if n <= MAX_POINTS:
        return xs, ys
    k = math.ceil(n / (MAX_POINTS // 2))
    ox: list[float] = []
    oy: list[Optional[float]] = []
    for i in range(0, n, k):
        seg = [(xs[j], ys[j]) for j in range(i, min(i + k, n))]
        good = [p for p in seg if is_finite(p[1])]
        if len(good) < len(seg):  # keep the gap visible
            ox.append(seg[0][0])
            oy.append(None)
        if good:
            lo = min(good, key=lambda p: p[1])
            hi = max(good, key=lambda p: p[1])
            for p in sorted({lo, hi}, key=lambda p: p[0]):
                ox.append(p[0])
                oy.append(p[1])
    return ox, oy


def line_chart(
    series_list: Sequence[tuple[str, Series]],
    title: str,
    *,
    reference_label: Optional[str] = None,
    y_range: Optional[tuple[float, float]] = None,
    width: float = 560,
    height: float = 270,
) -> str:
    """One or more curves over a numeric x, with axes, legend, a reference line and non-finite markers.

    The y axis is log when a series asks for it or when positive values span more than three
    decades (a loss that blows up to 1e18 before turning NaN); `y_range` widens the linear axis
    to at least that span (accuracy on 0..1, so a flat 0.27 does not fill the chart).
    """
    curves = []
    for name, s in series_list:
        pts = [(float(x), y) for x, y in zip(s.x, s.y) if is_finite(x)]
        curves.append((name, s, pts))
    if not any(is_finite(y) for _, _, pts in curves for _, y in pts):
        return empty_chart(title, "no finite values to plot")
    finite_all = [y for _, _, pts in curves for _, y in pts if is_finite(y)]
    log = any(s.log_y for _, s, _ in curves) or (
        spans_decades(finite_all, CURVE_LOG_SPAN) and y_range is None
    )
    refs = [s.reference for _, s, _ in curves if is_finite(s.reference)]
    ref = refs[0] if refs else None

    vals = [y for _, _, pts in curves for _, y in pts if is_finite(y) and (y > 0 or not log)]
    if ref is not None and (ref > 0 or not log):
        vals.append(ref)
    if not vals:  # log requested but nothing positive: fall back to linear
        log = False
        vals = [y for _, _, pts in curves for _, y in pts if is_finite(y)]
    xs_all = [x for _, _, pts in curves for x, _ in pts]

    if log:
        ylo, yhi, yt = _log_ticks(min(vals), max(vals))
    else:
        if y_range is not None:
            vals += list(y_range)
        # A little air above and below, so a reference line at the data's edge is not lost in the axis.
        lo_v, hi_v = min(vals), max(vals)
        pad = (hi_v - lo_v) * 0.04
        lo_p = max(lo_v - pad, 0.0) if lo_v >= 0 else lo_v - pad
        ylo, yhi, raw, step = _linear_ticks(lo_p, hi_v + pad)
        yt = [(t, _tick_label(t, step)) for t in raw]
    # Learning rates and similar sweeps span decades on x; steps (integers) never go log.
    log_x = min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 1e3 and any(x != int(x) for x in xs_all)
    if log_x:
        xlo, xhi, xlt = _log_ticks(min(xs_all), max(xs_all))
        xt = [(t, lab) for t, lab in xlt if xlo <= t <= xhi]
    else:
        xlo, xhi, xraw, xstep = _linear_ticks(min(xs_all), max(xs_all), 6)
        if xstep < 1 and all(x == int(x) for x in xs_all):  # batches and steps: no "1.5" ticks
            xlo, xhi, xstep = float(min(xs_all)), float(max(max(xs_all), min(xs_all) + 1)), 1.0
            xraw = [float(t) for t in range(int(xlo), int(xhi) + 1)]
        if min(xs_all) >= 0 and xlo < 0:
            xlo = 0.0
        xt = [(t, _tick_label(t, xstep)) for t in xraw if xlo <= t <= xhi]

    s0 = curves[0][1]
    y_label = s0.y_label + (" (log scale)" if log else "")
    ml = 22 + max(_text_w(lab) for _, lab in yt) + 8
    legend = [
        (name + (f" ({sum(1 for _, y in pts if not is_finite(y))} non-finite)" if any(not is_finite(y) for _, y in pts) else ""),
         PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)], "line")
        for i, (name, _, pts) in enumerate(curves)
    ]
    show_legend = len(curves) > 1 or legend[0][0] != curves[0][0]
    legend_svg: list[str] = []
    top = _legend(legend_svg, legend, title, width) if show_legend else 30.0
    height += top - 30  # extra legend rows add height rather than squeeze the plot
    x0, x1 = ml, width - 14
    y0, y1 = height - 40, top
    xs_ = _Scale(xlo, xhi, x0, x1, log_x)
    ys_ = _Scale(ylo, yhi, y0, y1, log)

    desc = "; ".join(
        f"{name}: {len(pts)} points over {s.x_label} {fmt(pts[0][0])}–{fmt(pts[-1][0])}, last {fmt(pts[-1][1])}"
        for name, s, pts in curves if pts
    )
    out = _open(width, height, title, desc)
    _y_axis(out, ys_, yt, x0, x1, y_label, y1, y0)
    for t, lab in xt:
        x = xs_(t)
        out.append(f'<line x1="{_c(x)}" x2="{_c(x)}" y1="{_c(y0)}" y2="{_c(y0 + 4)}" stroke="{AXIS}"/>')
        out.append(f'<text x="{_c(x)}" y="{_c(y0 + 16)}" text-anchor="middle" fill="{MUTED}">{_e(lab)}</text>')
    out.append(f'<line x1="{_c(x0)}" x2="{_c(x1)}" y1="{_c(y0)}" y2="{_c(y0)}" stroke="{AXIS}"/>')
    x_label = s0.x_label + (" (log scale)" if log_x else "")
    out.append(f'<text x="{_c((x0 + x1) / 2)}" y="{_c(height - 6)}" text-anchor="middle" fill="{MUTED}">{_e(x_label)}</text>')

    if ref is not None and (ref > 0 or not log):
        _hline(out, ys_(ref), x0, x1, reference_label or f"reference {fmt(ref)}")

    bad_x: list[float] = []
    for i, (name, s, pts) in enumerate(curves):
        color, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        bad_x += [x for x, y in pts if not is_finite(y)]
        dx, dy = _decimate([p[0] for p in pts], [p[1] for p in pts])
        segs: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(dx, dy):
            if is_finite(y) and (y > 0 or not log):
                segs[-1].append((xs_(x), ys_(y)))
            elif segs[-1]:
                segs.append([])
        d = " ".join("M" + " L".join(f"{_c(px)} {_c(py)}" for px, py in seg) for seg in segs if len(seg) > 1)
        da = f' stroke-dasharray="{dash}"' if dash else ""
        if d:
            out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.8" stroke-linejoin="round"{da}><title>{_e(name)}</title></path>')
        finite = [(x, y) for x, y in pts if is_finite(y) and (y > 0 or not log)]
        lone = [seg[0] for seg in segs if len(seg) == 1]
        if len(finite) <= 40:  # few points (validation evaluations): mark each, with its value
            for x, y in finite:
                out.append(
                    f'<circle cx="{_c(xs_(x))}" cy="{_c(ys_(y))}" r="2.8" fill="{color}" stroke="#fff" stroke-width="0.8">'
                    f"<title>{_e(name)} at {_e(s.x_label)} {fmt(x)}: {fmt(y)}</title></circle>"
                )
        else:
            for px, py in lone:
                out.append(f'<circle cx="{_c(px)}" cy="{_c(py)}" r="2" fill="{color}"/>')

    if bad_x:
        # A pale band over every non-finite x: reads as one region when they are contiguous,
        # as separate stripes when scattered, and hides nothing underneath.
        pitch = max(1.5, (x1 - x0) / max(1, len(curves[0][2])))
        band = "".join(
            f"M{_c(px)} {_c(y1)}V{_c(y0)}" for px in sorted({round(xs_(x), 1) for x in bad_x})
        )
        out.append(f'<path d="{band}" stroke="{HIGH}" stroke-opacity="0.14" stroke-width="{_c(pitch)}"/>')
        first = min(bad_x)
        fx = xs_(first)
        out.append(f'<line x1="{_c(fx)}" x2="{_c(fx)}" y1="{_c(y1)}" y2="{_c(y0)}" stroke="{HIGH}" stroke-dasharray="2 3"/>')
        lab = f"non-finite from {s0.x_label} {fmt(first)}"
        anchor, tx = ("end", fx - 4) if fx + _text_w(lab, 10.5) > x1 else ("start", fx + 4)
        # Near the x axis: the reference label and the curves' starts crowd the top.
        out.append(
            f'<text x="{_c(tx)}" y="{_c(y0 - 6)}" text-anchor="{anchor}" fill="{HIGH}" font-size="10.5" font-weight="600" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{_e(lab)}</text>'
        )
    out += legend_svg
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------- bar chart


def bar_chart(
    series: Series,
    title: str,
    threshold: Optional[float] = None,
    *,
    threshold_label: Optional[str] = None,
    log: Optional[bool] = None,
    plot_height: float = 200,
) -> str:
    """Values over named categories (layers, classes); log axis when they span decades; threshold colouring."""
    names = [str(x) for x in series.x]
    vals = list(series.y) + [None] * max(0, len(names) - len(series.y))
    n = len(names)
    if n == 0:
        return empty_chart(title, "no categories")
    finite = [v for v in vals if is_finite(v)]
    if not finite:
        return empty_chart(title, "no finite values to plot")
    pos = [v for v in finite if v > 0]
    if log is None:
        log = series.log_y or spans_decades(finite, LOG_SPAN)
    if log and not pos:
        log = False
    if threshold is None and is_finite(series.reference):
        threshold = series.reference

    if log:
        # Half a step below the smallest value, so the smallest bar is not drawn zero-high.
        lo = min(pos) * 0.5
        hi = max(pos + ([threshold] if threshold and threshold > 0 else []))
        ylo, yhi, yt = _log_ticks(lo, hi)
    else:
        lo = min(finite + [0.0] + ([threshold] if threshold is not None else []))
        hi = max(finite + [0.0] + ([threshold] if threshold is not None else []))
        if lo == hi == 0:
            hi = 1.0  # all zeros: show them on a 0..1 axis rather than a symmetric one around 0
        ylo, yhi, raw, step = _linear_ticks(lo, hi)
        yt = [(t, _tick_label(t, step)) for t in raw]

    # Width grows with the number of categories up to a page's width: slanted labels for up to
    # ~60 layers, upright ones to ~90, then every other label, each bar keeping its full name
    # in a tooltip.
    pitch = 56.0 if n <= 8 else 36.0 if n <= 16 else 22.0
    plot_w = min(1080.0, max(400.0, n * pitch))
    pitch = plot_w / n
    labels = [_truncate(s) for s in names]
    horizontal = max(_text_w(s, 10) for s in labels) <= pitch - 4
    # Neighbouring labels need ~12.5 px between baselines: at 45° that takes a wider pitch than upright.
    angle = 0 if horizontal else 45 if pitch >= 18 else 90
    step_lab = 1 if angle != 90 else max(1, math.ceil(12.0 / pitch))
    max_lab = max(_text_w(s, 10) for s in labels[::step_lab])
    drop = max_lab * (0.7071 if angle == 45 else 1.0)
    ml = 22 + max(_text_w(lab) for _, lab in yt) + 8
    if angle == 45:
        ml = max(ml, drop - pitch / 2 + 6)  # the first slanted label must not run off the left edge
    mb = (22 if horizontal else drop + 16) + 18
    width = ml + plot_w + 14
    x0, x1 = ml, ml + plot_w
    legend = [
        (f"> {fmt(threshold)}", HIGH, "", "box"), (f"≤ {fmt(threshold)}", LOW, "", "box"),
        (threshold_label or f"threshold {fmt(threshold)}", INK, "5 4", "line"),
    ] if threshold is not None else []
    legend_svg: list[str] = []
    top = _legend(legend_svg, legend, title, width) if legend else 30.0
    # The plot area keeps its height whatever the labels below it need.
    height = top + plot_height + mb
    y0, y1 = top + plot_height, top
    ys_ = _Scale(ylo, yhi, y0, y1, log)

    def over(v: float) -> bool:
        return threshold is not None and v > threshold

    n_over = sum(1 for v in finite if over(v))
    desc = f"{n} {series.x_label or 'categories'}; values {fmt(min(finite))} to {fmt(max(finite))}" + (
        f"; {n_over} above {fmt(threshold)}" if threshold is not None else ""
    )
    out = _open(width, height, title, desc)
    _y_axis(out, ys_, yt, x0, x1, (series.y_label or "") + (" (log scale)" if log else ""), y1, y0)
    bw = min(pitch * 0.72, 36.0)
    base = y0 if log else ys_(0.0)
    for i, (name, lab, v) in enumerate(zip(names, labels, vals)):
        cx = x0 + (i + 0.5) * pitch
        tip = f"{name}: {fmt(v) if is_finite(v) else 'not measured' if v is None else fmt(v)}"
        if is_finite(v) and (v > 0 or not log):
            y = ys_(v)
            top_y, h = min(y, base), abs(base - y)
            out.append(
                f'<rect x="{_c(cx - bw / 2)}" y="{_c(top_y)}" width="{_c(bw)}" height="{_c(max(h, 0.8))}" '
                f'fill="{HIGH if over(v) else LOW}"><title>{_e(tip)}</title></rect>'
            )
            if n <= 12:
                out.append(f'<text x="{_c(cx)}" y="{_c(top_y - 4)}" text-anchor="middle" font-size="10" fill="{INK}">{_e(fmt(v))}</text>')
        else:  # zero on a log axis, missing or non-finite: a small mark, so the slot is not silently empty
            mark = "0" if is_finite(v) else "–" if v is None else fmt(v)
            out.append(f'<text x="{_c(cx)}" y="{_c(y0 - 3)}" text-anchor="middle" font-size="9" fill="{MUTED}">{_e(mark)}<title>{_e(tip)}</title></text>')
        if i % step_lab == 0:
            t = f"<title>{_e(name)}</title>" if lab != name else ""
            if horizontal:
                out.append(f'<text x="{_c(cx)}" y="{_c(y0 + 15)}" text-anchor="middle" font-size="10" fill="{MUTED}">{_e(lab)}{t}</text>')
            else:
                ox = 3 if angle == 45 else 3.5  # nudge so the text, not its corner, sits under the bar
                out.append(
                    f'<text transform="translate({_c(cx + ox)} {_c(y0 + 8)}) rotate(-{angle})" text-anchor="end" font-size="10" fill="{MUTED}">{_e(lab)}{t}</text>'
                )
    out.append(f'<line x1="{_c(x0)}" x2="{_c(x1)}" y1="{_c(y0)}" y2="{_c(y0)}" stroke="{AXIS}"/>')
    xl = series.x_label or ""
    if step_lab > 1:
        xl += f" (every {step_lab}{'nd' if step_lab == 2 else 'th'} labelled; hover a bar for its name)"
    out.append(f'<text x="{_c((x0 + x1) / 2)}" y="{_c(height - 6)}" text-anchor="middle" fill="{MUTED}">{_e(xl)}</text>')
    if threshold is not None and (threshold > 0 or not log):
        # Labelled in the legend, not on the line, where it would collide with bar values.
        _hline(out, ys_(threshold), x0, x1, "", INK)
    out += legend_svg
    out.append("</svg>")
    return "".join(out)
