"""02-secret-ref: the verifier renders the backend with the learner's env entry and lints it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises

from .conftest import rejected


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("02-secret-ref")
    assert result.status == "passed"
    assert "Secret 'chaos-secret'" in result.seen


def secret(name: str, key: str, **extra: object) -> dict[str, object]:
    ref = {"name": name, "key": key, **extra}
    return {"name": "CHAOS_TOKEN", "valueFrom": {"secretKeyRef": ref}}


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ("chaos-secret", "not an env entry"),  # the Secret's name alone
        ({"name": "CHAOS_TOKEN", "value": "s3cr3t"}, "literal value"),
        (
            {
                "name": "CHAOS_TOKEN",
                "valueFrom": {"configMapKeyRef": {"name": "backend-config", "key": "CHAOS_TOKEN"}},
            },
            "configMapKeyRef",
        ),
        # the right kind of object, the wrong one: the pod would never start
        (secret("postgres-secret", "CHAOS_TOKEN"), "has no key 'CHAOS_TOKEN'"),
        # a Secret key that exists, but holds the database password (this used to pass)
        (secret("postgres-secret", "POSTGRES_PASSWORD"), "does not hold the chaos token"),
        (secret("chaos-secret", "chaos_token"), "has no key 'chaos_token'"),  # keys are exact
        (secret("chaos-secret", "CHAOS_TOKEN", optional=True), "optional"),
        ({"name": "CHAOS_TOKEN", "valueFrom": {"secretKeyRef": {"name": "chaos-secret"}}}, "key"),
        ({**secret("chaos-secret", "CHAOS_TOKEN"), "name": "chaos_token"}, "not CHAOS_TOKEN"),
        ({"secretRef": {"name": "chaos-secret"}}, "not CHAOS_TOKEN"),  # envFrom's shape
    ],
)
def test_a_plausible_wrong_entry_is_rejected(wrong: object, seen: str) -> None:
    assert seen in rejected("02-secret-ref", wrong).seen
