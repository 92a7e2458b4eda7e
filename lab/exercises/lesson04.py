"""Lesson 04's exercise: a rolling-update strategy, checked on the rendered Deployment.

`rollout_bounds` is the arithmetic the lesson teaches (notebook 04 uses it too): how few pods
are ready and how many exist during a rolling update, with Kubernetes' rounding.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lab import manifests
from lab.contract import BACKEND_HPA
from lab.exercises import Outcome, session_objects, verifier
from lab.i18n import N_, _
from lab.manifests import Obj

DEFAULT_SURGE = DEFAULT_UNAVAILABLE = "25%"  # Kubernetes' defaults for a RollingUpdate
ROLLING_FIELDS = frozenset({"maxSurge", "maxUnavailable"})  # spec.strategy.rollingUpdate


def _resolve(value: int | str, total: int, *, round_up: bool) -> int:
    """An absolute value, or a percentage of `total` (maxSurge rounds up, maxUnavailable down)."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(
        _("{value!r} is neither a count (0, 1, ...) nor a percentage ('25%')").format(value=value)
    )


def rollout_bounds(replicas: int, rolling: Mapping[str, Any]) -> tuple[int, int]:
    """(fewest ready pods, most pods in total) while `replicas` pods are rolled with `rolling`
    (the Deployment's `spec.strategy.rollingUpdate`)."""
    unavailable = _resolve(
        rolling.get("maxUnavailable", DEFAULT_UNAVAILABLE), replicas, round_up=False
    )
    surge = _resolve(rolling.get("maxSurge", DEFAULT_SURGE), replicas, round_up=True)
    if unavailable == 0 and surge == 0:
        raise ValueError(_("maxSurge and maxUnavailable are both 0: no update could ever proceed"))
    return replicas - unavailable, replicas + surge


@verifier(
    "04-strategy",
    hint=N_(
        "maxUnavailable takes pods away before their replacement is ready; maxSurge adds "
        "pods above the count (a percentage surge rounds up). Which one keeps capacity whole?"
    ),
)
def strategy(answer: object, objects: Sequence[Obj] | None = None, **_context: Any) -> Outcome:
    """The learner's rollingUpdate, put into the rendered Deployment: with the HPA's floor of
    replicas, never fewer than all of them ready and never more than one extra pod."""
    if not isinstance(answer, Mapping):
        return Outcome(
            False, _("a {type}, not a rollingUpdate (a dict)").format(type=type(answer).__name__)
        )
    if unknown := sorted(set(answer) - ROLLING_FIELDS):
        return Outcome(
            False,
            _("fields {unknown}: a rollingUpdate has only {fields}").format(
                unknown=unknown, fields=sorted(ROLLING_FIELDS)
            ),
            _("Write the two numbers of spec.strategy.rollingUpdate, nothing else."),
        )
    rendered = copy.deepcopy(list(objects if objects is not None else session_objects()))
    deployment = manifests.find(rendered, "Deployment", "backend")
    deployment["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": dict(answer)}
    replicas = manifests.find(rendered, "HorizontalPodAutoscaler", BACKEND_HPA)["spec"][
        "minReplicas"
    ]
    try:
        min_ready, max_pods = rollout_bounds(
            replicas, deployment["spec"]["strategy"]["rollingUpdate"]
        )
    except ValueError as exc:
        return Outcome(False, str(exc))
    seen = _("{replicas} replicas: at least {min_ready} ready, at most {max_pods} pods").format(
        replicas=replicas, min_ready=min_ready, max_pods=max_pods
    )
    return Outcome(min_ready == replicas and max_pods <= replicas + 1, seen)
