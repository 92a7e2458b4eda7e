"""Targets bring the stack up (`kind` cluster, an existing `cluster`'s namespace, or `local`
processes) and describe its endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.errors import LabError, TargetUnavailableError, UsageError
from lab.i18n import _
from lab.lessons import PARTS, check_parts
from lab.settings import Settings
from lab.targets.base import Endpoints, ReplicaRecord, Target, docker_problem
from lab.targets.spec import (
    AUTO,
    NAMES,
    TargetSpec,
    check_name,
    requested_spec,
    satisfied_by,
    spec,
    up_timeout,
)

__all__ = [
    "AUTO",
    "NAMES",
    "REASON_ENV",
    "Choice",
    "Endpoints",
    "ReplicaRecord",
    "Target",
    "TargetSpec",
    "check_name",
    "choose",
    "docker_problem",
    "local_because",
    "make_target",
    "requested_spec",
    "satisfied_by",
    "spec",
    "up_timeout",
]


# Set by a parent that resolved the target for a `lab up` it starts (the runner, for `auto`):
# why it chose it. That `lab up` logs it instead of calling its explicit target "requested".
REASON_ENV = "LAB_TARGET_REASON"


@dataclass(frozen=True)
class Choice:
    """Which target to use, and why (one line for the learner)."""

    name: str
    reason: str


def choose(requested: str, settings: Settings) -> Choice:
    """Resolve "auto" to kind (Docker answers and a kind binary can be had) or local; keep
    explicit choices. Auto never picks "cluster": a shared cluster is only used when asked for.
    `requested` comes from --target, LAB_TARGET or a notebook's TARGET: checked here."""
    check_name(requested, "--target, LAB_TARGET or a notebook's TARGET")
    if requested == "local":
        return Choice("local", _("target=local (requested): local processes, no cluster"))
    if requested == "cluster":
        context = settings.kube_context or _("the current kubeconfig context")
        return Choice(
            "cluster",
            _("target=cluster (requested): {context}, namespace {namespace}").format(
                context=context, namespace=settings.namespace
            ),
        )
    problem = docker_problem()
    if requested == "kind":
        if problem:
            raise TargetUnavailableError(
                _("Cannot use the kind target: {problem}.").format(problem=problem),
                _("Start Docker, or use --target local."),
            )
        from lab.targets.kind import CGROUP_V1_FIX, cgroup_problem

        if cgroups := cgroup_problem():
            raise TargetUnavailableError(
                _("Cannot use the kind target: {problem}.").format(problem=cgroups),
                _(CGROUP_V1_FIX),
            )
        return Choice("kind", _("target=kind (requested): Docker answers"))
    if problem:
        return Choice("local", local_because(problem))
    from lab.targets.kind import cgroup_problem, kind_binary  # only when Docker answers: heavy

    if cgroups := cgroup_problem():
        return Choice("local", local_because(cgroups))

    try:
        kind = kind_binary(settings)  # on PATH, cached, or downloaded now
    except TargetUnavailableError as exc:
        return Choice(
            "local",
            _("target=local (auto): Docker answers but kind does not: {problem}").format(
                problem=exc.problem
            ),
        )
    return Choice(
        "kind", _("target=kind (auto): Docker answers and kind is at {kind}").format(kind=kind)
    )


def local_because(problem: str) -> str:
    """The reason `auto` gives when Docker's `problem` leaves only the local target."""
    return _("target=local (auto): {problem}, so no kind cluster").format(problem=problem)


def make_target(
    name: str, settings: Settings, replicas: int | None = None, parts: Sequence[str] = PARTS
) -> Target:
    """The target object for `name` ("local", "kind" or "cluster"), imported lazily; its `up()`
    builds `parts` (`lab.lessons`)."""
    wanted = check_parts(parts)
    if name == "local":
        from lab.targets.local import LocalTarget

        return LocalTarget(settings, settings.replicas if replicas is None else replicas, wanted)
    if name not in ("kind", "cluster"):
        raise LabError(
            _("Unknown target {name}.").format(name=repr(name)), _("Use kind, local or cluster.")
        )
    if replicas is not None:  # `auto` resolved to a cluster; named one: lab.commands.stack
        raise UsageError(
            _(
                "--replicas applies to the local target only: on {target} the "
                "HorizontalPodAutoscaler sets the number of backend pods."
            ).format(target=name),
            _("Drop --replicas (or change the HPA in manifests/base)."),
        )
    if name == "cluster":
        from lab.targets.cluster import ClusterTarget

        return ClusterTarget(settings, wanted)
    from lab.targets.kind import KindTarget

    return KindTarget(settings, wanted)
