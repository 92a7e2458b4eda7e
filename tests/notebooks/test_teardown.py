"""99-teardown attaches to the lab that runs, or says that none does: it never starts a lab
(on kind that would create a cluster and build an image) only to stop it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "99-teardown.ipynb"


@pytest.mark.timeout(300)
def test_teardown_without_a_lab_says_so_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = tmp_path / "lab-state.json"
    monkeypatch.setenv("LAB_STATE_FILE", str(state_file))
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no kind: starting one would fail
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source += '\nTARGET = "kind"'  # what a learner on kind would have
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "No lab is running: nothing to stop." in printed
    assert "no lab was running" in printed
    assert not state_file.exists()
