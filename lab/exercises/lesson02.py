"""Lesson 02 (secrets and configuration): the exercise on where the chaos token comes from."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from lab.exercises import Outcome, session_objects, verifier
from lab.i18n import N_, _
from lab.lint import lint
from lab.manifests import Obj, find

WORKLOAD = "backend"  # the Deployment whose container reads the token
VARIABLE = "CHAOS_TOKEN"


def with_env(objects: Sequence[Obj], entry: Mapping[str, Any]) -> list[Obj]:
    """A copy of `objects` whose backend container defines `entry["name"]` as `entry` says."""
    patched = copy.deepcopy(list(objects))
    [container] = find(patched, "Deployment", WORKLOAD)["spec"]["template"]["spec"]["containers"]
    env = [e for e in container.get("env") or [] if e["name"] != entry.get("name")]
    container["env"] = [*env, copy.deepcopy(dict(entry))]
    return patched


def token_sources(objects: Sequence[Obj]) -> set[tuple[str, str]]:
    """(Secret, key) pairs that hold the chaos token in the render: what the lab's own backend
    reads it from, else every Secret key named like the variable."""
    [container] = find(objects, "Deployment", WORKLOAD)["spec"]["template"]["spec"]["containers"]
    for entry in container.get("env") or []:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if entry.get("name") == VARIABLE and ref:
            return {(ref["name"], ref["key"])}
    return {
        (s["metadata"]["name"], key)
        for s in objects
        if s["kind"] == "Secret"
        for key in {*(s.get("data") or {}), *(s.get("stringData") or {})}
        if key == VARIABLE
    }


@verifier(
    "02-secret-ref",
    hint=N_(
        "A pod spec is readable by anyone who can read Deployments, and a ConfigMap is for "
        "what you would print in a log: point the variable at the object meant for secrets, at "
        "the name and key that hold this very value (list the Secrets and their keys with "
        "find(...))."
    ),
)
def secret_ref(answer: object, objects: Sequence[Obj] | None = None) -> Outcome:
    """Render the backend with the learner's env entry; it must read the chaos token's Secret
    key, which must exist (else the pod never starts)."""
    if not isinstance(answer, Mapping):
        return Outcome(
            False, _("a {type}, not an env entry (a dict)").format(type=type(answer).__name__)
        )
    objects = session_objects() if objects is None else objects
    if answer.get("name") != VARIABLE:
        return Outcome(
            False,
            _("an entry named {name!r}, not {variable}").format(
                name=answer.get("name"), variable=VARIABLE
            ),
        )
    source = answer.get("valueFrom") or {}
    if "value" in answer or not isinstance(source, Mapping) or "secretKeyRef" not in source:
        where = (
            _("{variable} comes from a literal value in the pod spec")
            if "value" in answer
            else _("{variable} comes from valueFrom {source}")
        )
        return Outcome(False, where.format(variable=VARIABLE, source=source))
    ref = source["secretKeyRef"]
    if not isinstance(ref, Mapping) or not {"name", "key"} <= ref.keys():
        return Outcome(
            False,
            _("secretKeyRef {ref!r}: it needs the Secret's `name` and a `key`").format(ref=ref),
        )
    if ref.get("optional"):
        return Outcome(
            False,
            _(
                "an optional reference: with the Secret missing the backend would start without "
                "a token, and chaos would be silently off"
            ),
        )
    patched = with_env(objects, answer)
    namespace = find(patched, "Deployment", WORKLOAD)["metadata"]["namespace"]
    broken = [f.message for f in lint(patched, namespace) if f.rule == "references-exist"]
    if broken:
        return Outcome(
            False,
            _("the pod would not start (CreateContainerConfigError): {reason}").format(
                reason=broken[0]
            ),
        )
    if (ref["name"], ref["key"]) not in token_sources(objects):
        return Outcome(
            False,
            _(
                "Secret {secret!r}, key {key!r} exists, but it does not hold the chaos token: "
                "the backend would take that value as its {variable}"
            ).format(secret=ref["name"], key=ref["key"], variable=VARIABLE),
        )
    return Outcome(
        True,
        _("{variable} from Secret {secret!r}, key {key!r}").format(
            variable=VARIABLE, secret=ref["name"], key=ref["key"]
        ),
    )
