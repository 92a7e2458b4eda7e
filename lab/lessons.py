"""The lessons table: per lesson its notebook, the part of the stack it builds, the objects that
part leaves in the learner's namespace, and the run-time objects it creates.

One table, read by `lab.connect(lesson=N)` (session), `reset --to N`, the runner, `workshop
status` and the exercises; each notebook names its lesson in its metadata
(`metadata.ironclad.lesson`) and tests/unit/lab/test_lessons.py holds the two to each other and
each lesson's objects to the rendered stack. Adding a lesson is one row here plus its notebook.

The parts come in the original design's order (Namespace -> Secrets -> PostgreSQL -> Backend ->
autoscaling/PDB/NetworkPolicy -> monitoring): each needs the ones before it. Light on purpose
(no Kubernetes client, no pandas): `lab up` and `workshop status` import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError
from lab.i18n import N_, _

PROBE_PODS = "lab-probe"  # label selector of the probe pods `lab.k8s` creates (PROBE_LABEL)
EXERCISE_LABEL = "lab.ironclad/exercise"  # every object an exercise creates carries it
EXERCISES = EXERCISE_LABEL  # selector: the label with any value


@dataclass(frozen=True)
class Lesson:
    """One row: lesson `number`, its notebook (file stem), the stack `part` it builds (None: it
    builds nothing), the (kind, name) `objects` that part leaves in the learner's namespace,
    what stands in for them on the local target (`local_analog`, "" when nothing does), and
    the label selectors of the run-time objects it creates (`creates`: a reset to this lesson
    or an earlier one removes them)."""

    number: int
    notebook: str
    part: str | None = None
    objects: tuple[tuple[str, str], ...] = ()
    local_analog: str = ""
    creates: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The two-digit number the notebook and its exercises start with ("05")."""
        return f"{self.number:02d}"


LESSONS: tuple[Lesson, ...] = (
    Lesson(0, "00-preflight"),
    Lesson(
        1,
        "01-namespace",
        "namespace",
        local_analog=N_("the lab's temporary directory (every process and file of the stack)"),
        creates=(EXERCISES,),
    ),
    Lesson(
        2,
        "02-secrets-and-config",
        "config",
        (("Secret", "postgres-secret"), ("ConfigMap", "backend-config")),
        N_("the environment variables the backend processes get"),
        (EXERCISES,),
    ),
    Lesson(  # 03 deletes postgres-0: its StatefulSet recreates it
        3,
        "03-postgres-statefulset",
        "postgres",
        (("StatefulSet", "postgres"),),
        N_("a PostgreSQL server process in the lab's directory"),
        (EXERCISES,),
    ),
    Lesson(  # 04 restarts the rollout: re-applied, harmless
        4,
        "04-backend-deployment",
        "backend",
        # The HPA comes with the Deployment: the lab's Deployment has no spec.replicas, the
        # HPA's minReplicas sets the count (docs/departures.md); 05 teaches it under load.
        (("Deployment", "backend"), ("HorizontalPodAutoscaler", "backend-hpa")),
        N_("the backend processes, restarted like a ReplicaSet restarts pods"),
        (EXERCISES,),
    ),
    Lesson(  # 05 also evicts pods and scales the backend
        5,
        "05-scaling-and-resilience",
        "resilience",
        (("PodDisruptionBudget", "backend-pdb"), ("NetworkPolicy", "default-deny-all")),
        "",  # PDB and NetworkPolicy need a cluster: those cells are needs-cluster
        (PROBE_PODS, EXERCISES),
    ),
    Lesson(
        6,
        "06-observability",
        "monitoring",
        (("Deployment", "prometheus"),),
        N_("a Prometheus process with file-based discovery (Grafana where it is installed)"),
        (EXERCISES,),
    ),
    Lesson(7, "07-chaos-and-slo", creates=(EXERCISES,)),  # chaos, kills: undone by the base state
    # 08 builds nothing of the stack: it applies the backup add-on (overlays/backup) and removes
    # it again at its end; a restore puts back the data it destroyed
    Lesson(8, "08-backup-and-restore", creates=(EXERCISES,)),
    Lesson(99, "99-teardown"),
)
PARTS: tuple[str, ...] = tuple(row.part for row in LESSONS if row.part)  # in building order


def lesson(number: int) -> Lesson:
    """The row of lesson `number` (LabError naming the lessons there are otherwise)."""
    for row in LESSONS:
        if row.number == number:
            return row
    raise LabError(
        _("There is no lesson {number}.").format(number=number),
        _("Use one of {choices}.").format(choices=", ".join(str(row.number) for row in LESSONS)),
    )


def by_notebook(stem: str) -> Lesson:
    """The row of the notebook named `stem` ("05-scaling-and-resilience")."""
    for row in LESSONS:
        if row.notebook == stem:
            return row
    raise LabError(
        _("No lesson has the notebook {stem}.").format(stem=stem),
        _("Add its row to lab.lessons.LESSONS (and metadata.ironclad.lesson to the notebook)."),
    )


def expected_parts(number: int) -> tuple[str, ...]:
    """The parts lesson `number` expects on entry: those the lessons before it build."""
    lesson(number)
    return tuple(row.part for row in LESSONS if row.part and row.number < number)


def check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    """`parts` as a tuple, if they are the first parts of `PARTS` in order (each needs the ones
    before it); LabError otherwise."""
    parts = tuple(parts)
    if parts != PARTS[: len(parts)]:
        raise LabError(
            _(
                "Cannot build {parts}: the stack is built in order, {order}, each part on the "
                "ones before it."
            ).format(parts=", ".join(parts), order=" -> ".join(PARTS)),
            _("Ask for the first N parts (lab.lessons.expected_parts(lesson) gives them)."),
        )
    return parts


def part_lesson(part: str) -> Lesson:
    """The lesson that builds `part` (LabError naming the parts otherwise)."""
    for row in LESSONS:
        if row.part == part:
            return row
    raise LabError(
        _("There is no part {part} of the stack.").format(part=repr(part)),
        _("Use one of {choices}.").format(choices=", ".join(PARTS)),
    )


def with_part(built: Sequence[str], part: str) -> tuple[str, ...]:
    """The parts once `part` is built on top of `built`; LabError, saying why the order
    matters, when a part before it is missing (each part needs the ones before it)."""
    row = part_lesson(part)
    needed = PARTS[: PARTS.index(part)]
    missing = [p for p in needed if p not in built]
    if missing:
        first = part_lesson(missing[0])
        raise LabError(
            _("{part} (lesson {lesson}) needs {missing} first: {reason}").format(
                part=part, lesson=row.id, missing=", ".join(missing), reason=_(ORDER_REASONS[part])
            ),
            _(
                "Build {first} first (lesson {first_lesson}, {notebook}), or let "
                "lab.connect(lesson={number}) build everything before lesson {lesson}."
            ).format(
                first=first.part,
                first_lesson=first.id,
                notebook=first.notebook,
                number=row.number,
                lesson=row.id,
            ),
        )
    return PARTS[: PARTS.index(part) + 1]


# Why each part needs the ones before it (the design's deployment order).
ORDER_REASONS = {
    "config": N_("every Secret and ConfigMap lives in the namespace."),
    "postgres": N_(
        "its StatefulSet reads its password from postgres-secret (a pod whose Secret is missing "
        "stays in CreateContainerConfigError)."
    ),
    "backend": N_(
        "the backend reads its settings and password from backend-config and postgres-secret, "
        "and a replica that starts before PostgreSQL answers gives up after its start-up "
        "timeout (kind: CrashLoopBackOff; local: the process exits) and is never ready."
    ),
    "resilience": N_(
        "the HPA, PDB and NetworkPolicies select the backend's and PostgreSQL's pods."
    ),
    "monitoring": N_("Prometheus discovers the backend's pods and its alerts assume they exist."),
}


def part_of(obj: Mapping[str, Any]) -> str | None:
    """The part a rendered object belongs to; None for what the target itself provides (the
    cluster-wide metrics-server of the kind overlay). LabError for an object no part claims."""
    kind, meta = obj["kind"], obj["metadata"]
    if kind == "Namespace":
        return "namespace"
    if meta.get("namespace") in (None, "kube-system"):
        return None
    name = str(meta["name"])
    app = (meta.get("labels") or {}).get("app") or name.split("-")[0]
    if app in ("prometheus", "grafana"):
        return "monitoring"
    if kind in ("PodDisruptionBudget", "NetworkPolicy"):
        return "resilience"
    if kind in ("Secret", "ConfigMap"):
        return "config"
    if app in ("postgres", "backend"):
        return app
    raise LabError(
        _("No part of the stack claims {kind}/{name}.").format(kind=kind, name=name),
        _("Say which lesson builds it in lab.lessons.part_of."),
    )


def objects_of(objects: Iterable[Mapping[str, Any]], part: str) -> list[Mapping[str, Any]]:
    """The rendered `objects` of `part`, in their order."""
    return [obj for obj in objects if part_of(obj) == part]


def removed_by(number: int, rows: Sequence[Lesson] = LESSONS) -> list[str]:
    """Selectors of the run-time objects a reset to lesson `number` removes (its own and those
    of every later lesson)."""
    lesson(number)
    return sorted({s for row in rows if row.number >= number for s in row.creates})


def with_objects() -> list[Lesson]:
    """The lessons whose part leaves objects in the namespace (`workshop status` columns)."""
    return [row for row in LESSONS if row.objects]
