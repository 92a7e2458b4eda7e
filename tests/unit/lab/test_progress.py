"""Progress bars: tqdm's live bar normally, one final line in a headless runner's kernel."""

from __future__ import annotations

import io
import os
import pty

import pytest
from tqdm.auto import tqdm

from lab import progress
from lab.waits import poll


def test_outside_a_headless_run_the_bar_is_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.HEADLESS_ENV, raising=False)
    with progress.bar(total=3, desc="x", unit="s", leave=False) as bar:
        assert isinstance(bar, tqdm)


def test_headless_bar_prints_one_final_line_and_no_frames(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(progress.HEADLESS_ENV, "1")
    calls = iter([None, None, "ready"])
    assert poll(lambda: next(calls), what="the thing", timeout=30, interval=0.01) == "ready"
    out, err = capsys.readouterr()
    assert err == ""
    assert "\r" not in out
    assert len(out.splitlines()) == 1
    assert out.startswith("the thing: 0/30 s in ")


def test_a_disabled_bar_stays_silent_even_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(progress.HEADLESS_ENV, "1")
    assert poll(lambda: True, what="quiet", timeout=5, progress=False)
    assert capsys.readouterr() == ("", "")


def test_final_line_counts_updates() -> None:
    line = progress.FinalLine(total=10, desc="load 5/s", unit="req")
    for _ in range(4):
        line.update()
    assert line.line().startswith("load 5/s: 4/10 req in ")


def test_off_a_terminal_a_bar_draws_no_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23 item 6: a piped `ironclad-lab up` wrote carriage-return frames into its log; a
    bar draws on a terminal (a pty here) and nothing on a pipe or a file."""
    monkeypatch.delenv(progress.HEADLESS_ENV, raising=False)
    to_file = io.StringIO()
    with progress.bar(total=3, desc="waiting", unit="s", file=to_file) as bar:
        bar.update(3)
    assert to_file.getvalue() == ""
    leader, follower = pty.openpty()
    try:
        with (
            os.fdopen(follower, "w", closefd=False) as terminal,
            progress.bar(total=3, desc="waiting", unit="s", file=terminal) as bar,
        ):
            bar.update(3)
        drawn = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert "\r" in drawn
    assert "waiting" in drawn
