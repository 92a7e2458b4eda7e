"""The run's tail (`run_lab`): the report is written once every lane has run its notebooks, while
the stacks are torn down, not after; a Ctrl-C during the report still tears every stack down.

The notebooks run on real kernels in two lanes; the stacks are stand-ins (`Stack`) for `lab up`,
since the notebooks here need no lab: what is under test is the order of the run's own steps, which
a stand-in's teardown records (a real stack's teardown on Ctrl-C: test_cli_runner.py).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lab.runner import offline_html, run
from lab.settings import Settings

pytestmark = pytest.mark.xdist_group(__name__)
GUARD_S = 60.0  # a teardown that never sees its cue gives up after this (the test then fails)
Events = list[tuple[str, Any]]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(folder: Path, name: str, seconds: float) -> Path:
    """A notebook with a heading and a printed line (`seconds`: its declared duration, which
    decides its lane)."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'TARGET = "auto"\nNAMESPACE = "ironclad-demo"', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_markdown_cell(f"# {name}\n\n## Summary"),
            nbformat.v4.new_code_cell(f"print('ran {name}')"),
        ]
    )
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["ironclad"] = {"headless_seconds": seconds}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


class Process:
    """The stand-in's `lab up` process: SIGTERM (what an aborted lane sends) ends its teardown."""

    def __init__(self, row: str, events: Events) -> None:
        self.row, self.events, self.terminated = row, events, threading.Event()

    def signal(self, signum: int) -> None:
        self.events.append((signal.Signals(signum).name, self.row))
        self.terminated.set()


class Stack:
    """Stands in for `StackProcess`: up at once, torn down when `cue(stack)` says so (polled;
    given up after GUARD_S), recording when its teardown begins and ends."""

    def __init__(self, events: Events, cue: Callable[[Stack], bool], settings: Settings) -> None:
        self.requested, self.settings, self.events, self.cue = "local", settings, events, cue
        self.row = settings.state_file.name  # lab-state.json, lab-state-2.json
        self.process = Process(self.row, events)
        self.state = None

    target = property(lambda self: self.requested)
    namespace = property(lambda self: self.settings.namespace)
    state_file = property(lambda self: self.settings.state_file)

    def spawn(self) -> None:
        pass

    def wait_ready(self) -> None:
        pass

    def stop(self) -> None:
        self.events.append(("teardown begins", self.row))
        deadline = time.monotonic() + GUARD_S
        while not self.cue(self) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.events.append(("teardown ends", self.row))


@pytest.fixture
def signals() -> Iterator[None]:
    """run_lab installs SIGTERM/SIGHUP handlers: put this process's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def run_two_lanes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: Events, cue: Callable[[Stack], bool]
) -> tuple[int, Path]:
    folder, report_dir = tmp_path / "notebooks", tmp_path / "report"
    folder.mkdir()
    notebooks = [notebook(folder, "01-first", 5), notebook(folder, "02-second", 5)]
    monkeypatch.setattr(
        run,
        "StackProcess",
        lambda target, settings, *rest: Stack(events, cue, settings),
    )
    options = run.RunOptions("local", notebooks, report_dir, cell_timeout=120, lanes=2)
    code = run.run_lab(options, Settings.from_env({"LAB_REPO_ROOT": str(tmp_path)}))
    return code, report_dir


@pytest.mark.timeout(240)
def test_the_report_is_written_while_the_stacks_are_torn_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    """Each stand-in's teardown lasts until index.html exists: it ends only because the report
    is written meanwhile (before, the report waited for the last teardown: each one gave up)."""
    events: Events = []

    def report_written(stack: Stack) -> bool:
        if (tmp_path / "report" / "index.html").exists():
            if ("report seen", stack.row) not in events:
                events.append(("report seen", stack.row))
            return True
        return False

    code, report_dir = run_two_lanes(tmp_path, monkeypatch, events, report_written)
    assert code == 0, events
    for row in ("lab-state.json", "lab-state-2.json"):
        mine = [what for what, where in events if where == row]
        assert mine == ["teardown begins", "report seen", "teardown ends"], events
    # written while a lane still tore down, yet with every lane's results
    summary = json.loads((report_dir / "summary.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["passed", "passed"]
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "ran 01-first" in page
    assert "ran 02-second" in page
    assert 'id="nb-02-second--Summary"' in page


@pytest.mark.timeout(240)
def test_ctrl_c_during_the_report_still_tears_every_stack_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    """A real SIGINT reaches this process while the report's page is rendered and both stacks
    are still being torn down: every lane is aborted (SIGTERM to its `lab up`), the run waits for
    both teardowns, writes the report as interrupted and exits 130."""
    events: Events = []
    page_exporter = offline_html.exporter

    class Interrupted:
        """The page's exporter, with a Ctrl-C arriving while it renders (once)."""

        def __init__(self) -> None:
            self.exporter = page_exporter()

        def from_notebook_node(self, *args: Any, **kwargs: Any) -> Any:
            if not any(what == "Ctrl-C" for what, _ in events):
                events.append(("Ctrl-C", "report"))
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(GUARD_S)  # KeyboardInterrupt comes first
            return self.exporter.from_notebook_node(*args, **kwargs)

    monkeypatch.setattr(offline_html, "exporter", Interrupted)
    try:
        code, report_dir = run_two_lanes(
            tmp_path, monkeypatch, events, lambda stack: stack.process.terminated.is_set()
        )
    except KeyboardInterrupt:  # not pytest's to see: it would end the session
        pytest.fail(f"the Ctrl-C escaped the run: {events}")
    assert code == 130, events
    ctrl_c = events.index(("Ctrl-C", "report"))
    for row in ("lab-state.json", "lab-state-2.json"):  # still tearing down when Ctrl-C came
        assert ctrl_c < events.index(("SIGTERM", row)) < events.index(("teardown ends", row)), (
            events
        )
    summary = json.loads((report_dir / "summary.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["passed", "passed"]
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "interrupted (KeyboardInterrupt)" in page
    assert "ran 02-second" in page
