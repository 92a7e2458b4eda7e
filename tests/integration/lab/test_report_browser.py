"""The report in headless Chromium with the network cut off (issue 23 item 9): it renders — the
overview, the math, the plots, a "not run here" cell — and asks no other host for anything;
and the README's pictures are shot from such a report (scripts/pictures.py, its offline part).

Debian's chromium is driven by Playwright through `executable_path` (no browser download), in a
browser context that is offline, with every request other than the page's own file refused and
recorded.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib.image
import nbformat
import numpy as np
import pytest

from lab import dashboard, notrun
from lab.nb import SKIP_KEY
from lab.runner import report

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
SHOW = "Deployment/backend"
NOT_RUN_BODY = """\
images = {n.metadata.name: n.status.images for n in env.k8s.core.list_node().items}
lab.check(all(images.values()), expected="the backend image is loaded on every node")
"""
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend", "namespace": "ironclad-demo"},
    "spec": {"template": {"spec": {"containers": [{"name": "backend", "image": "b:lab"}]}}},
}

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium here"),
    pytest.mark.xdist_group(__name__),  # module-scoped fixture (the report): one worker
]


def pictures_script() -> ModuleType:
    """scripts/pictures.py (a script, not a package module), imported from its file."""
    spec = importlib.util.spec_from_file_location("pictures", ROOT / "scripts" / "pictures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_figure() -> bytes:
    """The provisioned dashboard drawn by lab.dashboard with no Prometheus: every panel empty."""
    board = dashboard.Dashboard.from_file(
        ROOT / "manifests" / "monitoring" / "dashboards" / "ironclad.json"
    )
    out = io.BytesIO()
    dashboard.draw(board, [], window=timedelta(minutes=1)).savefig(out, format="png", dpi=50)
    return out.getvalue()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report (lab.runner.report) of one executed notebook with math, a "not run here" cell
    (lab.notrun's real output) and the dashboard figure."""
    folder = tmp_path_factory.mktemp("report")
    not_run = notrun.explain(NOT_RUN_BODY, "local", [DEPLOYMENT], [SHOW]).bundle()
    png = base64.b64encode(dashboard_figure()).decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 05 · Scaling\n\n$$\\text{desired} = "
            "\\left\\lceil r \\times \\frac{u}{t} \\right\\rceil$$"
        ),
        nbformat.v4.new_code_cell(
            f"%%cluster --show {SHOW}\n{NOT_RUN_BODY}",
            metadata={"tags": ["needs-cluster"], SKIP_KEY: True},
            outputs=[nbformat.v4.new_output("display_data", not_run)],
        ),
        nbformat.v4.new_code_cell(
            "dashboard.draw(board, results, window=window)",
            execution_count=2,
            outputs=[nbformat.v4.new_output("display_data", {"image/png": png, "text/plain": ""})],
        ),
    ]
    executed = folder / "05-scaling.ipynb"
    nbformat.write(nb, executed)
    tally = report.tally_notebook(nb)
    result = report.RunResult(
        "local", [report.NotebookResult("05-scaling", "passed", 2.0, tally, executed)]
    )
    report.write_report(result, folder)
    return folder


def test_the_report_renders_with_no_network(report_dir: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    asked: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            asked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.route("**/*", local_only)
            page.goto((report_dir / "index.html").as_uri(), wait_until="load")
            overview = page.locator("table").first.inner_text()
            images: list[dict[str, Any]] = page.evaluate(
                "[...document.images].map(i => ({cls: i.className, w: i.naturalWidth}))"
            )
            not_run = page.locator(".jp-CodeCell", has_text="Not run here").first.inner_text()
        finally:
            browser.close()
    assert asked == []
    assert "05-scaling" in overview
    assert "passed" in overview
    math = [i["w"] for i in images if i["cls"] == "lab-math"]
    plots = [i["w"] for i in images if i["cls"] != "lab-math"]
    assert len(math) == 1, images
    assert math[0] > 100, images  # typeset, decoded, laid out
    assert len(plots) == 1, images
    assert plots[0] > 100, images
    assert "env.k8s.core.list_node()" in not_run
    assert "image: b:lab" in not_run


def test_the_pictures_script_shoots_a_report(report_dir: Path, tmp_path: Path) -> None:
    """scripts/pictures.py's offline part: the pictures of a finished report, no lab needed."""
    pictures = pictures_script()
    written = pictures.shoot(report_dir, tmp_path)
    assert [p.name for p in written] == list(pictures.PICTURES)
    committed = {p.name for p in (ROOT / "docs" / "images").glob("*.png")}
    assert committed == set(pictures.PICTURES)  # the README shows them (tests/unit/test_docs.py)
    for path in written:
        pixels = np.asarray(matplotlib.image.imread(path))  # a PNG, or imread raises
        height, width = pixels.shape[:2]
        assert height > 50, (path.name, pixels.shape)
        assert width > 300, (path.name, pixels.shape)
        assert pixels.std() > 0.01, f"{path.name} is blank"
    assert (tmp_path / pictures.DASHBOARD).read_bytes() == dashboard_figure_in(report_dir)


def dashboard_figure_in(report_dir: Path) -> bytes:
    nb = nbformat.read(report_dir / "05-scaling.ipynb", as_version=4)
    return base64.b64decode(nb.cells[2].outputs[0]["data"]["image/png"])


def test_the_pictures_script_says_what_is_missing(tmp_path: Path) -> None:
    pictures = pictures_script()
    with pytest.raises(pictures.PictureError, match=r"no report at .*run the lab first"):
        pictures.shoot(tmp_path, tmp_path / "images")
    (tmp_path / "index.html").write_text("<html><body><p>empty</p></body></html>")
    with pytest.raises(pictures.PictureError, match="--notebooks 06"):
        pictures.dashboard_png(tmp_path)
