"""The README's pictures, made from the lab itself so that they show what the code does today.

    nox -s pictures                          # a local lab run, then the pictures (a few minutes)
    nox -s pictures -- --report build/lab-report   # the pictures of a finished run's report

A run (`ironclad-lab run --target local`, every notebook unless `--notebooks`) writes a report
into build/pictures/report/; from that report, headless Chromium (Debian's, driven by Playwright
with every request to another host refused: the report is self-contained) takes

- docs/images/report-index.png: the report's overview table;
- docs/images/not-run-cell.png: the first cell that names the objects it works on
  (`%%cluster --show`), as the local target shows it: "not run here", what it would do;

and docs/images/dashboard.png is the figure lesson 06 drew in that run with `lab.dashboard`
(the provisioned Grafana dashboard, every panel from the live Prometheus), taken out of the
executed notebook as it is. Shooting a report needs no lab ("the offline part":
tests/integration/lab/test_report_browser.py runs it); the run needs PostgreSQL and Prometheus.
Commit the PNGs it writes. Debian's fonts-noto-color-emoji gives the report's status marks
(✅, ⏭) their glyphs; without it Chromium draws empty boxes.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
RUN_REPORT = ROOT / "build" / "pictures" / "report"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`--chromium PATH` for another)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
REPORT_INDEX = "report-index.png"
NOT_RUN_CELL = "not-run-cell.png"
DASHBOARD = "dashboard.png"
PICTURES = (REPORT_INDEX, NOT_RUN_CELL, DASHBOARD)  # what the README shows
DASHBOARD_CALL = "dashboard.draw("  # the lesson-06 cell whose figure is the dashboard
WIDTH = 1100  # CSS pixels: the README shows pictures at up to ~900
SCALE = 1  # device pixels per CSS pixel (2 doubles every PNG's size for little gain on GitHub)


class PictureError(RuntimeError):
    """A picture could not be made; the message says what to do."""


def run_lab(report_dir: Path, notebooks: str | None) -> None:
    """`ironclad-lab run --target local` into `report_dir` (the lab itself, its own processes)."""
    argv = [sys.executable, "-m", "lab", "run", "--target=local", f"--report-dir={report_dir}"]
    if notebooks:
        argv += ["--notebooks", notebooks]
    if subprocess.run(argv, cwd=ROOT, check=False).returncode != 0:
        raise PictureError(f"the lab run failed: its report is {report_dir / 'index.html'}")


def dashboard_png(report_dir: Path) -> bytes:
    """The figure the executed notebook's `dashboard.draw(...)` cell displayed, as PNG bytes."""
    for path in sorted(report_dir.glob("[0-9][0-9]-*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code" or DASHBOARD_CALL not in "".join(cell["source"]):
                continue
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    return base64.b64decode(output["data"]["image/png"])
    raise PictureError(
        f"no executed notebook in {report_dir} has a `{DASHBOARD_CALL}...)` cell with a figure: "
        "run lesson 06 (`--notebooks 06`)"
    )


def shoot(report_dir: Path, out_dir: Path, chromium: Path = CHROMIUM) -> list[Path]:
    """The three pictures of the report in `report_dir`, written into `out_dir`."""
    from playwright.sync_api import sync_playwright  # the `test` extra: `nox -s pictures`

    index = report_dir / "index.html"
    if not index.exists():
        raise PictureError(f"no report at {index}: run the lab first (or drop --report)")
    if not chromium.exists():
        raise PictureError(f"no Chromium at {chromium}: apt-get install chromium, or --chromium")
    out_dir.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(
                viewport={"width": WIDTH, "height": 800}, device_scale_factor=SCALE
            )
            page.route("**/*", lambda route: _local_only(route, refused))
            page.goto(index.as_uri(), wait_until="load")
            page.locator(".jp-MarkdownCell").first.screenshot(path=out_dir / REPORT_INDEX)
            cell = page.locator(".jp-CodeCell", has_text="Not run here").filter(
                has_text="%%cluster --show"
            )
            if cell.count() == 0:
                raise PictureError(
                    f"{index} has no `%%cluster --show` cell shown as not run: use a local "
                    "run's report (kind and a shared cluster run those cells)"
                )
            cell.first.screenshot(path=out_dir / NOT_RUN_CELL)
        finally:
            browser.close()
    if refused:
        raise PictureError(f"the report asked for other hosts: {refused}")
    (out_dir / DASHBOARD).write_bytes(dashboard_png(report_dir))
    return [out_dir / name for name in PICTURES]


def _local_only(route: Any, refused: list[str]) -> None:
    """Let the page read its own file; refuse (and note) anything from another host."""
    if route.request.url.startswith(("file:", "data:")):
        route.continue_()
    else:
        refused.append(route.request.url)
        route.abort()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--report", type=Path, help="a finished run's report folder: no lab run")
    parser.add_argument("--notebooks", help="the run's notebooks, e.g. 00,06 (default: all)")
    parser.add_argument("--out", type=Path, default=IMAGES, help=f"default: {IMAGES}")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help=f"default: {CHROMIUM}")
    args = parser.parse_args(argv)
    report_dir = args.report
    try:
        if report_dir is None:
            report_dir = RUN_REPORT
            run_lab(report_dir, args.notebooks)
        written = shoot(report_dir, args.out, args.chromium)
    except PictureError as exc:
        print(f"pictures: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
