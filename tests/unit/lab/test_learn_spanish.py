"""The learner's side of lab in Spanish (catalog area `learn`): a failing check, an exercise's
hint, a "not run here" explanation, a timeout and the report, each in Spanish from the real
catalog (lab/locale/es/LC_MESSAGES/learn.po) after `lab.i18n.use("es")` and in English without
it (the conftest brings every test back to English); and the runner still counts the checks of
a Spanish run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from lab import exercises, i18n, notrun
from lab.checks import MIMETYPE, CheckFailedError, check
from lab.errors import ExerciseFailedError, LabTimeoutError
from lab.i18n import CODE_CONTEXT
from lab.nb import read_notebook
from lab.runner import report
from lab.waits import poll

pytestmark = pytest.mark.unit

# A notebook's check texts, as its catalog (notebooks/locale/es/...) holds them.
EXPECTED = "{ready} replicas ready"
HINT = "Wait for the rollout, then run the cell again."
NOTEBOOK_SPANISH = {
    EXPECTED: "{ready} réplicas listas",
    HINT: "Espera al rollout y vuelve a ejecutar la celda.",
}
CRONJOB = {"kind": "CronJob", "metadata": {"name": "postgres-backup"}, "spec": {"schedule": ""}}
CELL = 'env.k8s.evict(pod)\nlab.check(True, expected="3 replicas ready")'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A lab root whose one notebook catalog translates the check texts of a code cell."""
    catalog = Catalog(locale="es")
    for english, spanish in NOTEBOOK_SPANISH.items():
        catalog.add(english, spanish, context=CODE_CONTEXT)
    folder = tmp_path / "notebooks" / "locale" / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "04-backend.po").open("wb") as handle:
        write_po(handle, catalog)
    return tmp_path


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A real IPython shell, as in a kernel (cleared afterwards)."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_a_failing_check_speaks_spanish_with_the_notebooks_text(root: Path) -> None:
    with pytest.raises(CheckFailedError) as english:
        check(False, expected="3 replicas ready", seen=2, hint=HINT)
    assert str(english.value).startswith("Check failed: expected 3 replicas ready, but saw 2.")

    i18n.use("es", root)
    with pytest.raises(CheckFailedError) as spanish:
        check(False, expected="3 replicas ready", seen=2, hint=HINT)
    assert str(spanish.value) == (
        "Comprobación fallida: se esperaba 3 réplicas listas, pero se observó 2.\n"
        "→ Espera al rollout y vuelve a ejecutar la celda."
    )
    with pytest.raises(CheckFailedError) as no_hint:
        check(False, expected="a text no catalog has", seen=0)
    assert "se esperaba a text no catalog has" in str(no_hint.value)  # shown as written
    assert "Vuelve a ejecutar las celdas anteriores" in no_hint.value.next_step


def test_a_passing_check_shows_spanish_and_the_bundle_keeps_what_was_shown(
    root: Path, shell: InteractiveShell
) -> None:
    i18n.use("es", root)
    with capture_output() as captured:
        check(True, expected="3 replicas ready", seen=3)
    [output] = captured.outputs
    assert output.data["text/plain"] == "✅ [superada] 3 réplicas listas (observado: 3)"
    assert output.data[MIMETYPE] == {"passed": True, "expected": "3 réplicas listas", "seen": "3"}


def test_an_exercise_hint_comes_in_spanish() -> None:
    wrong = "0 */2 * * *"  # every two hours: a 120-minute gap for a 60-minute recovery point
    with pytest.raises(ExerciseFailedError) as english:
        exercises.verify("08-schedule", wrong, objects=[CRONJOB])
    assert english.value.hint.startswith("The recovery point is the time")
    assert "longest stretch without one 120 minutes" in english.value.seen

    i18n.use("es")
    with pytest.raises(ExerciseFailedError) as spanish:
        exercises.verify("08-schedule", wrong, objects=[CRONJOB])
    assert spanish.value.hint.startswith("El punto de recuperación es el tiempo transcurrido")
    assert "336 copias de seguridad en 4 semanas" in spanish.value.seen
    shown = spanish.value._render_traceback_()
    assert shown[0] == f"✗ [todavía no] ejercicio 08-schedule: se observó {spanish.value.seen}."
    assert shown[1].startswith("→ pista: El punto de recuperación")
    assert "si te atascas: lab.solution('08-schedule')" in shown[2]


def test_an_exercise_not_attempted_says_so_in_spanish(shell: InteractiveShell) -> None:
    i18n.use("es")
    with capture_output() as captured:
        assert exercises.verify("08-schedule").status == "not attempted"  # the data: English
    [output] = captured.outputs
    assert output.data["text/plain"].startswith("✍️ ejercicio 08-schedule: sin intentar")


def test_a_not_run_explanation_comes_in_spanish() -> None:
    assert notrun.explain(CELL, "local").plain().startswith("⏭ Not run here — this cell needs")

    i18n.use("es")
    explained = notrun.explain(CELL, "local", [CRONJOB], ["CronJob/postgres-backup"])
    plain = explained.plain()
    assert plain.startswith("⏭ No se ejecuta aquí — esta celda necesita un clúster de Kubernetes")
    assert "\nllamar a la API de Kubernetes:\n- env.k8s.evict(pod)" in plain
    assert "el objeto con el que trabaja, CronJob/postgres-backup (generado, no aplicado):" in plain
    assert explained.markdown().startswith("**⏭ No se ejecuta aquí** — esta celda")
    assert "<em>y comprobar que (lo que verías):</em>" in explained.html()


def test_a_timeout_comes_in_spanish_with_the_notebooks_what(root: Path) -> None:
    def never() -> None:
        raise ConnectionError("refused")

    with pytest.raises(LabTimeoutError) as english:
        poll(never, what="3 replicas ready", timeout=0.05, interval=0.01, progress=False)
    assert str(english.value).startswith("Timed out after 0.05 s waiting for 3 replicas ready.")

    i18n.use("es", root)
    with pytest.raises(LabTimeoutError) as spanish:
        poll(never, what="3 replicas ready", timeout=0.05, interval=0.01, progress=False)
    assert spanish.value.problem == (
        "Tiempo de espera agotado tras 0.05 s esperando: 3 réplicas listas.\n"
        "Último estado:\núltimo error: ConnectionError: refused"
    )
    assert spanish.value.next_step.startswith("Lee el último estado")


def _ran(tmp_path: Path, shell: InteractiveShell) -> report.RunResult:
    """A run of one notebook whose two checks passed in the language in use: the outputs are
    what `lab.check` published, saved and read back as the runner reads executed notebooks."""
    with capture_output() as captured:
        check(True, expected="3 replicas ready", seen=3)
        check(True, expected="a text no catalog has", seen="yes")
    cell = nbformat.v4.new_code_cell("lab.check(...)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=o.data) for o in captured.outputs]
    path = tmp_path / "04-backend.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    tally = report.tally_notebook(read_notebook(path, as_version=4))
    done = report.NotebookResult("04-backend", "passed", 1.5, tally)
    return report.RunResult("local", [done, report.NotebookResult("05-scaling")], 1.5)


def test_the_runner_counts_the_checks_of_a_spanish_run(
    root: Path, tmp_path: Path, shell: InteractiveShell
) -> None:
    i18n.use("es", root)
    result = _ran(tmp_path, shell)
    assert result.summary()["notebooks"][0]["checks_passed"] == 2
    assert [c.expected for c in result.notebooks[0].tally.checks] == [
        "3 réplicas listas",
        "a text no catalog has",
    ]
    assert result.notebooks[1].summary()["status"] == "not run"  # summary.json: its own words


def test_the_report_speaks_spanish(root: Path, tmp_path: Path, shell: InteractiveShell) -> None:
    english = report.summary_table(_ran(tmp_path, shell))
    assert "2 notebooks: 1 passed, 0 failed, 1 not run" in english

    i18n.use("es", root)
    result = _ran(tmp_path, shell)
    table = report.summary_table(result, tmp_path / "index.html")
    assert table.splitlines()[0] == "Ironclad Lab — objetivo local — 1.5 s"
    assert "2 notebooks — superados: 1, fallidos: 0, sin ejecutar: 1" in table
    assert "comprobaciones" in table.splitlines()[1]
    assert "⏸ sin ejecutar" in table
    page = report.write_report(result, tmp_path / "report").read_text(encoding="utf-8")
    assert "<h1>Informe de Ironclad Lab</h1>" in page
    assert "celdas omitidas (necesitan un clúster)" in page
    assert "✅ superada: 3 réplicas listas" in page
    assert "1 celda ejecutada · 0 omitidas (necesitan un clúster) · 2 comprobaciones" in page
