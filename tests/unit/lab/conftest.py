"""Each unit test of lab/ ends with no lab connected and speaking English: `lab.connect()`
keeps the last lab it returned as the notebook side's (`lab.session.session_settings`), and
the entry points (`cli.main`, `connect`) choose the process's language (`lab.i18n.use`), so a
test that connected with throwaway settings, or ran a command with `--lang es`, would otherwise
hand them to the next test in its worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import i18n, session


@pytest.fixture(autouse=True)
def no_connected_lab() -> Iterator[None]:
    yield
    session._CURRENT.clear()
    i18n.use(i18n.SOURCE_LANGUAGE)


@pytest.fixture
def spanish() -> None:
    """The lab speaks Spanish for this test (its catalogs and the notebooks' of this checkout);
    `no_connected_lab` switches back to English afterwards."""
    i18n.use("es", Path(__file__).resolve().parents[3])


@pytest.fixture(params=list(i18n.LANGUAGES))
def language(request: pytest.FixtureRequest) -> str:
    """A test once in each language the lab speaks, spoken from its start (`lab.i18n.use`; a
    command run through `cli.main` takes it from the settings it is given)."""
    i18n.use(request.param)
    return str(request.param)
