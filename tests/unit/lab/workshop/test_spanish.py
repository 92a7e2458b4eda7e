"""`workshop provision|status|teardown` in Spanish (issue 25 items 2 and 4): the board's
headings and words, provision's refusal and teardown's confirmation come from the `cli`
catalog with `lab.i18n.use("es")`, and are the English source without it (the conftest speaks
English again after each test); `-o json` keeps its keys whatever the language."""

from __future__ import annotations

from typing import Any

import pytest

from lab import i18n
from lab.commands.workshop import confirm
from lab.errors import LabError
from lab.workshop.api import ObjectState
from lab.workshop.capacity import Footprint
from lab.workshop.guard import policy_objects
from lab.workshop.objects import Plan, all_objects
from lab.workshop.provision import provision
from lab.workshop.status import status, table

SIZE = Footprint(1, 1, 1, 1, 1)
PLAN = Plan("ws", ("learner-01", "learner-02"), SIZE, SIZE, {"cpu": "1", "memory": "1Mi"}, "1d")
FOREIGN = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "learner-02"}}


def test_the_board_speaks_the_language(language: str, fake_api: Any) -> None:
    fake_api.apply(all_objects(PLAN))
    fake_api.states = {("learner-01", "Deployment", "backend"): ObjectState(True, 1, 3)}
    learners = status(fake_api, "ws")
    heading, first, second = table(learners).splitlines()
    said = {
        "en": (
            "learner",
            "lesson 04",
            "language",
            "runs (checks passed)",
            "no run recorded",
            "missing",
        ),
        "es": (
            "estudiante",
            "lección 04",
            "idioma",
            "ejecuciones (comprobaciones superadas)",
            "ninguna ejecución registrada",
            "falta",
        ),
    }
    learner, lesson, spoken, runs, none, missing = said[language]
    assert heading.startswith(f"{learner}  ")
    assert lesson in heading
    assert f"  {spoken}  " in heading
    assert heading.endswith(runs)
    assert first.endswith(none)
    assert second.endswith(none)
    assert "Deployment/backend 1/3" in first  # 04: some there, not ready
    assert f"{missing} HorizontalPodAutoscaler/backend-hpa" in first or (
        f"HorizontalPodAutoscaler/backend-hpa {missing}" in first
    )
    board = {"learners": [learner.to_dict() for learner in learners]}
    assert set(board["learners"][0]) == {"namespace", "lessons", "notebooks", "unreadable"}


def test_no_learners_yet_says_to_provision(language: str, fake_api: Any) -> None:
    said = {"en": "(provision first)", "es": "(ejecuta provision primero)"}
    assert table(status(fake_api, "ws")).endswith(said[language] + ".")


def test_provision_refuses_what_it_does_not_own_in_the_language(
    language: str, fake_api: Any, tmp_path: Any
) -> None:
    fake_api.apply([FOREIGN])
    before = dict(fake_api.objects)
    with pytest.raises(LabError) as refused:
        provision(PLAN, fake_api, tmp_path, 3600)
    said = {
        "en": (
            "Nothing was changed: namespace learner-02 exists and is not a workshop's.",
            "Provision only creates what it owns.",
        ),
        "es": (
            "No se cambió nada: el namespace learner-02 existe y no es de ningún taller.",
            "provision solo crea lo que le pertenece.",
        ),
    }
    problem, fix = said[language]
    assert refused.value.problem == problem
    assert refused.value.next_step.startswith(fix)
    assert fake_api.objects == before
    assert not list(tmp_path.iterdir())


def test_teardown_without_a_terminal_deletes_nothing_and_says_why(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(LabError) as refused:
        confirm("?")
    said = {"en": "no terminal to ask on", "es": "no hay ninguna terminal donde preguntar"}
    assert said[language] in refused.value.problem
    assert "--yes" in refused.value.next_step


@pytest.mark.parametrize(("answer", "deletes"), [("s", True), ("sí", True), ("n", False)])
def test_teardown_takes_a_spanish_yes(
    answer: str, deletes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    i18n.use("es")
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
    if deletes:
        confirm("¿Eliminar?")
    else:
        with pytest.raises(LabError, match="Teardown cancelado: no se eliminó nada"):
            confirm("¿Eliminar?")
    assert asked == ["¿Eliminar? [s/N] "]


def test_the_admission_policy_refuses_in_the_language_it_was_provisioned_in(
    language: str,
) -> None:
    """What a refused learner reads from kubectl (the policy's messages, filled in)."""
    (policy, _binding) = policy_objects("ws", "1d", {})
    messages = [v["message"] for v in policy["spec"]["validations"]]
    said = {
        "en": ("ClusterIP only", "may not run as the ServiceAccount 'learner'"),
        "es": ("solo ClusterIP", "no pueden ejecutarse como la ServiceAccount 'learner'"),
    }
    assert all(any(words in m for m in messages) for words in said[language])
    assert not any("{" in m for m in messages)  # every placeholder filled in
