"""The official Kubernetes client's models as a validator of dict manifests.

The client validates types and required fields when it deserializes a model, and serializing the
model back drops any field the model does not know. `model_problem` says why an object fails
either test; `lab.workshop` validates what it provisions with it, and tests/manifests every
rendered object.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
from kubernetes.client import ApiClient

from lab.i18n import _
from lab.manifests import Obj


def model_name(obj: Obj) -> str:
    """The client model class of an object (rbac.authorization.k8s.io/v1 Role -> V1Role)."""
    version = str(obj["apiVersion"]).rsplit("/", 1)[-1]
    return version[0].upper() + version[1:] + str(obj["kind"])


def _normalized(value: Any) -> Any:
    """Drop the empty values the client omits on serialization ({} / [] / None)."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def model_problem(obj: Obj) -> str | None:
    """Why the client's model of `obj`'s kind refuses it, or None."""
    name = model_name(obj)
    if not hasattr(kubernetes.client, name):
        return _("the client has no model {model}").format(model=name)
    api = ApiClient()
    try:
        model = api.deserialize(json.dumps(obj), name, "application/json")
    except Exception as exc:  # the client's validation errors have no common base class
        return _("{model} rejected {name}: {error}").format(
            model=name, name=obj["metadata"]["name"], error=exc
        )
    round_trip = api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    if _normalized(round_trip) != _normalized(obj):
        return _("{model} {name}: fields unknown to the model were dropped").format(
            model=name, name=obj["metadata"]["name"]
        )
    return None
