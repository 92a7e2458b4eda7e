"""A learner's path in a real browser: JupyterLab opens 06-observability and runs it locally.

Debian's chromium is driven by Playwright through `executable_path` (no browser download).
The notebook is the committed one with the headless runner's shortened timings injected by
papermill (`prepare_only`), exactly what `python -m lab run` executes. Its kernel comes from the
lab's kernel spec (`lab.kernelspec`, installed in a temporary prefix named by JUPYTER_PATH, as
`nox -s jupyter` installs it into its venv), and its `%%cluster` cells show what they would do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill
import pytest
import requests

from lab import kernelspec
from lab.net import free_port
from lab.procs import ManagedProcess, wait_until
from lab.runner.execute import headless_parameters
from lab.settings import Settings, find_repo_root
from lab.stack import StackProcess

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "06-observability.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
FAILURE = re.compile(r"Traceback|CheckFailedError|Error:")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium here"),
    pytest.mark.xdist_group(__name__),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    work = tmp_path_factory.mktemp("lab")
    settings = Settings(repo_root=find_repo_root(), state_file_override=work / "state.json")
    with StackProcess("local", settings) as up:
        yield up


@pytest.fixture(scope="module")
def jupyter(stack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on a free port, serving a folder with 06-observability (headless timings)."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    root.mkdir()
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(root / NOTEBOOK.name),
        prepare_only=True,
        parameters=headless_parameters(NOTEBOOK, stack),
        progress_bar=False,
    )
    user_settings = {  # no news pop-up; every cell in the DOM (no windowing) to read outputs
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"windowingMode": "none"},
    }
    for plugin, values in user_settings.items():
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    kernels = kernelspec.install(home / "prefix").parent  # …/share/jupyter/kernels
    env = {
        **os.environ,
        "JUPYTER_PATH": str(kernels.parent),
        "LAB_STATE_FILE": str(stack.state_file),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "run"),
    }
    server = ManagedProcess(
        "jupyter lab",
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        home / "jupyter.log",
        env=env,
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _answers(f"{url}/api/status?token={token}") or not server.running(),
            timeout=60,
            what="JupyterLab to answer",
        )
        server.ensure_running()
        yield f"{url}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def cluster_cells() -> int:
    """The `%%cluster` cells of the notebook (each shows a "not run here" explanation locally)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return sum(c.cell_type == "code" and c.source.startswith("%%cluster") for c in nb.cells)


def expected_checks(grafana: bool) -> int:
    """lab.check calls in the cells that run on the local target (one ✅ output each)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return sum(
        c.source.count("lab.check(")
        for c in nb.cells
        if c.cell_type == "code"
        and "needs-cluster" not in c.metadata.get("tags", [])
        and (grafana or "env.endpoints.grafana" not in c.source)
    )


@pytest.mark.timeout(420)
def test_jupyterlab_runs_06_observability(jupyter: str, stack: StackProcess) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which(str(CHROMIUM))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(jupyter)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=60_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator('li[data-command="runmenu:run-all"]').click()
            outputs = page.locator(".jp-OutputArea-output")
            assert stack.state is not None
            wanted = expected_checks(grafana=stack.state.endpoints.grafana is not None)
            deadline = time.monotonic() + 300
            while True:
                texts = outputs.all_inner_texts()
                passed = [t for t in texts if t.lstrip().startswith("✅")]
                failed = [t for t in texts if FAILURE.search(t)]
                if failed or len(passed) >= wanted or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(1000)
            assert not failed, failed[0][:2000]
            assert len(passed) >= wanted, f"{len(passed)} of {wanted} checks shown: {passed}"
            assert any("every backend replica" in t or "Prometheus discovered" in t for t in passed)
            explained = [t for t in texts if t.lstrip().startswith("⏭ Not run here")]
            assert len(explained) == cluster_cells()
        finally:
            browser.close()
