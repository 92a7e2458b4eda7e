"""Each unit test of lab/ ends with no lab connected: `lab.connect()` keeps the last lab it
returned as the notebook side's (`lab.session.session_settings`), so a test that connected
with throwaway settings would otherwise hand them to the next test in its worker. It also ends
speaking English (`lab.i18n.use` chooses the language for the whole process), which is what
every test that asserts an English message expects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import i18n, session


@pytest.fixture(autouse=True)
def no_connected_lab() -> Iterator[None]:
    yield
    session._CURRENT.clear()


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    yield
    i18n.use(i18n.SOURCE_LANGUAGE)
