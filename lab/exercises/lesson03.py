"""Lesson 03 (PostgreSQL as a StatefulSet): the exercise on where the data directory lives."""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Sequence
from pathlib import PurePosixPath

from lab.exercises import Outcome, session_objects, verifier
from lab.i18n import N_, _
from lab.lint import lint
from lab.manifests import Obj, find

STATEFULSET = "postgres"


def with_pgdata(objects: Sequence[Obj], pgdata: str) -> list[Obj]:
    """A copy of `objects` whose PostgreSQL container keeps its data directory at `pgdata`."""
    patched = copy.deepcopy(list(objects))
    [container] = find(patched, "StatefulSet", STATEFULSET)["spec"]["template"]["spec"][
        "containers"
    ]
    env = [e for e in container.get("env") or [] if e["name"] != "PGDATA"]
    container["env"] = [*env, {"name": "PGDATA", "value": pgdata}]
    return patched


def claim_mounts(statefulset: Obj) -> dict[str, str]:
    """mountPath -> volume name, for the container's mounts of a volumeClaimTemplate."""
    claims = {t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates") or []}
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    return {
        m["mountPath"]: m["name"]
        for m in container.get("volumeMounts") or []
        if m["name"] in claims
    }


@verifier(
    "03-pgdata",
    hint=N_(
        "Only a volumeClaimTemplate's volume outlives the pod (emptyDir and the container's "
        "own files do not): find where the container mounts its claim. And what must initdb "
        "find at PGDATA the first time it runs, when the volume is brand new?"
    ),
)
def pgdata(answer: object, objects: Sequence[Obj] | None = None) -> Outcome:
    """Render the StatefulSet with the learner's PGDATA; it must be a subdirectory of a claim."""
    if not isinstance(answer, str) or not answer.startswith("/"):
        return Outcome(False, _("{answer!r}, not an absolute path").format(answer=answer))
    path = PurePosixPath(posixpath.normpath(answer))  # "a/../b" and "a/." are what they mean
    objects = session_objects() if objects is None else objects
    patched = with_pgdata(objects, path.as_posix())
    statefulset = find(patched, "StatefulSet", STATEFULSET)
    mounts = claim_mounts(statefulset)
    on_claim = [m for m in mounts if path.is_relative_to(m) and path != PurePosixPath(m)]
    namespace = statefulset["metadata"]["namespace"]
    storage = [f.message for f in lint(patched, namespace) if f.rule == "statefulset-storage"]
    if path.as_posix() in mounts:
        return Outcome(
            False,
            _(
                "PGDATA {answer} is where the claim is mounted: a new volume is not empty there "
                "(its filesystem's lost+found), and initdb refuses a directory that is not empty"
            ).format(answer=answer),
        )
    if storage or not on_claim:
        return Outcome(
            False,
            storage[0]
            if storage
            else _("PGDATA {answer} is on no claim's mount").format(answer=answer),
        )
    return Outcome(
        True,
        _("PGDATA {answer} is on claim {claim!r}").format(answer=answer, claim=mounts[on_claim[0]]),
    )
