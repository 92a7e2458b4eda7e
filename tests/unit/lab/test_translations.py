"""The repository's Spanish course is complete and current (issue 25 item 3): every catalog holds
exactly the English it translates, every entry translated (not empty, not fuzzy) with its
placeholders, link targets and code spans kept, and the generated notebooks are what the English
and the catalogs make. `ironclad-lab generate translations --check` says the same; without
`--check` it fixes all but the translating. (The tooling itself, and that each kind of problem
is found, is tested on a notebook of its own in test_i18n.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import catalogs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_every_translation_is_complete_and_current() -> None:
    problems = catalogs.problems(ROOT)
    assert not problems, (
        "run `ironclad-lab generate translations`, then translate what is listed:\n"
        + "\n".join(problems)
    )
