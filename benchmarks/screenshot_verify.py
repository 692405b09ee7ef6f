"""Screenshot check of the HTML report's --verify-fixes section in headless Chromium.

Runs doctor with --verify-fixes on fault fixtures, cuts each verified fix's section out of report.html (with
the report's own stylesheet), renders it in headless Chromium and checks the picture, not the markup: the
before and after curves are both drawn (pixels of the first two palette colours inside the chart), the
suggested diff shows its removed and added lines (their red and green backgrounds), and nothing is cut off
(the section ends above the bottom of the picture). The PNGs are kept for a person to look at.

    python benchmarks/screenshot_verify.py --out /tmp/shots

Needs Chromium (Debian: `apt-get install chromium`); exits 2 with that sentence when it is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (fixture, fix, what the chart draws)
CASES = [
    ("verify_mse_softmax_sgd.py", "cross-entropy", "validation accuracy, and a diff of the loss and the softmax"),
    ("dyn_lr_too_high.py", "learning-rate", "training loss on a log axis, and a diff of lr="),
    ("crash_batchnorm_last_batch.py", "drop-last", "no curve (a yes/no), and a diff adding drop_last=True"),
]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _count(img, colour: tuple[int, int, int], tol: int = 24) -> int:
    r0, g0, b0 = colour
    return sum(1 for r, g, b in img.get_flattened_data() if abs(r - r0) <= tol and abs(g - g0) <= tol and abs(b - b0) <= tol)


def section(html: str, fix: str) -> str:
    """The report's stylesheet and the verified-fix block of `fix`, as a page of its own."""
    css = re.search(r"<style>(.*?)</style>", html, re.S)
    start = html.find(f'data-fix="{fix}"')
    if start < 0:
        raise SystemExit(f"no verified section for {fix} in the report")
    start = html.rfind("<div", 0, start)
    depth, i = 0, start
    for m in re.finditer(r"<(/?)div\b", html[start:]):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            i = start + m.end()
            break
    end = html.find(">", i) + 1
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{css.group(1) if css else ''}</style></head>"
            f"<body style='background:#fff;margin:0;padding:12px;width:760px'>{html[start:end]}</body></html>")


def shoot(chromium: str, page: Path, png: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=800,1100",
                        f"--screenshot={png}", page.as_uri()], check=True, capture_output=True, timeout=120)


def check(png: Path, want_curves: bool) -> list[str]:
    from PIL import Image  # noqa: PLC0415 - comes with torchvision

    sys.path.insert(0, str(ROOT))
    from doctor.render.charts import PALETTE  # noqa: PLC0415

    img = Image.open(png).convert("RGB")
    problems = []
    if want_curves:
        before, after = _count(img, _rgb(PALETTE[0])), _count(img, _rgb(PALETTE[1]))
        print(f"    curve pixels: before {before}, after {after}")
        if before < 40 or after < 40:
            problems.append(f"a curve is missing (before {before}, after {after} pixels)")
    removed, added = _count(img, (0xFF, 0xEB, 0xE9), 3), _count(img, (0xE6, 0xFF, 0xEC), 3)
    print(f"    diff pixels: removed lines {removed}, added lines {added}")
    if removed < 500 or added < 500:
        problems.append(f"the diff's removed or added lines are not shown ({removed}, {added} pixels)")
    # The picture's bottom rows are page background: the section ended inside the window.
    w, h = img.size
    bottom = [img.getpixel((x, h - 3)) for x in range(0, w, 7)]
    if any(px != (255, 255, 255) for px in bottom):
        problems.append("the section runs past the bottom of the window (cut off)")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "doctor-verify-shots")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("Chromium is not installed: apt-get install chromium (Debian), then run this again.", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for fixture, fix, what in CASES:
        report_dir = args.out / fixture.removesuffix(".py")
        subprocess.run([sys.executable, "-m", "doctor", "check", str(ROOT / "fixtures" / fixture), "--verify-fixes",
                        "--fail-on", "never", "-q", "--output-dir", str(report_dir)], check=True, cwd=ROOT, timeout=600,
                       stdout=subprocess.DEVNULL)
        page = report_dir / f"verify-{fix}.html"
        page.write_text(section((report_dir / "report.html").read_text(encoding="utf-8"), fix), encoding="utf-8")
        png = report_dir / f"verify-{fix}.png"
        shoot(chromium, page, png)
        print(f"{fixture} ({fix}: {what}) -> {png}")
        problems = check(png, want_curves=fix != "drop-last")
        for p in problems:
            print(f"    FAIL {p}")
        failed += bool(problems)
    print(f"{len(CASES) - failed}/{len(CASES)} sections pass the screenshot check")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
