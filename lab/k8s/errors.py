"""The Kubernetes API's failures, explained: each names the context, the call, the cause and
the fix.

`explain` turns any error answer into an `ApiError` (`ForbiddenError` for 401/403 through
`api_error`, `NotFoundError` 404, `ConflictError` 409, `InvalidError` 422, `ApiError` the rest);
`transport_error` a request with no HTTP answer into an `ApiUnreachableError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.i18n import N_, _

QUOTA_FIX = N_(
    "Free room in the namespace (ironclad-lab down, or delete leftover objects), or ask the "
    "instructor to raise its ResourceQuota (ironclad-lab workshop provision sizes it)."
)
IMAGE_FIX = N_(
    "Check the image name in the event. On a shared cluster the backend image comes from a "
    "registry (nothing is published from this repository): push backend/Dockerfile's image "
    "where the cluster can pull it and pass --image REF. On kind, `ironclad-lab up --target "
    "kind` loads it; offline, `ironclad-lab images load --archive FILE`."
)
RBAC_FIX = N_(
    "Check --context and --namespace (kubectl config get-contexts); on a shared cluster a "
    "learner's Role grants exactly what lab.rbac lists, in their own namespace: ask the "
    "instructor to re-run ironclad-lab workshop provision."
)
NOT_FOUND_FIX = N_(
    "Check the name and --namespace. If a lesson creates it, run that lesson's cells above this "
    "one (or bring the lab to the lesson: ironclad-lab reset --to N)."
)
CONFLICT_FIX = N_(
    "Something else (another cell, a controller, kubectl) changed the object meanwhile, or it "
    "exists already: read it again and run the cell once more; for an apply, another field "
    "manager owns the field (kubectl get -o yaml --show-managed-fields shows who)."
)
INVALID_FIX = N_(
    "Fix the fields named above (kubectl explain KIND.FIELD says what each accepts); "
    "lab.lint checks the lab's manifests offline."
)
SERVER_FIX = N_(
    "The API server itself failed (overloaded, restarting, or a webhook erring): wait a moment "
    "and run it again; `kubectl get --raw /readyz?verbose` tells whether it is healthy."
)
POD_SECURITY_FIX = N_(
    "The lab's pods meet Pod Security 'restricted'; a change of yours (or a policy of the "
    "cluster) does not: compare the pod spec with lab.lint's namespace-restricted rules."
)


class ClusterWideError(LabError):
    """A call that needs more than one namespace, on a shared cluster where the learner's Role
    grants only their namespace."""


class ApiError(ApiException, LabError):
    """The API server answered a call with an error (`explain` picks the subclass).

    Still the `ApiException` it was (status, reason, body: code that checks them keeps
    working) and a `LabError` whose message names the context, the call, the cause and the fix.
    `action` is the call it explains (None: explained by the client, before any call named it).
    """

    def __init__(
        self,
        problem: str,
        next_step: str,
        answer: ApiException | None = None,
        action: str | None = None,
    ) -> None:
        ApiException.__init__(
            self,
            getattr(answer, "status", None),
            getattr(answer, "reason", None),
            body=getattr(answer, "body", None),
        )
        self.headers = getattr(answer, "headers", None)
        self.action = action
        LabError.__init__(self, problem, next_step)

    def __str__(self) -> str:
        return Exception.__str__(self)  # LabError's "problem → next step", not ApiException's


class ForbiddenError(ApiError):
    """HTTP 401/403: credentials, RBAC, quota, Pod Security."""


class NotFoundError(ApiError):
    """HTTP 404: the object (or its namespace) is not there."""


class ConflictError(ApiError):
    """HTTP 409: the object exists already, changed meanwhile, or another manager owns a field."""


class InvalidError(ApiError):
    """HTTP 422: the API server validated the object and refused it."""


class ApiUnreachableError(LabError):
    """No answer from the API server: nothing listens, the network is down, or TLS failed."""


class BlockedError(LabError):
    """A wait that cannot succeed by waiting: image not pullable, quota exceeded, Pod Security."""


# kube-apiserver's RBAC refusal: 'pods is forbidden: User "u" cannot list resource "pods" in API
# group "" in the namespace "ns"' (the group and namespace parts are absent when they are empty).
RBAC_REFUSAL = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)
HANDSHAKE = re.compile(r"Handshake status (?P<status>\d{3}) (?P<reason>[^-]*)")
TLS_DETAIL = re.compile(r"certificate verify failed[^')\]\n]*|hostname mismatch[^')\]\n]*")


def in_context(context: str | None) -> str:
    return _("context {context}").format(context=context) if context else _("the cluster")


def api_error(
    exc: ApiException,
    action: str | None,
    namespace: str | None,
    context: str | None = None,
    next_step: str | None = None,
) -> ForbiddenError:
    """A refusal (401/403) as one message: the context, what was refused, why, and the fix."""
    message = api_message(exc)
    where = in_context(context)
    doing = action or _("do this")
    if exc.status == 401:
        return ForbiddenError(
            _(
                "The API server of {where} did not accept your credentials (401 Unauthorized, "
                "trying to {doing}): the token expired or was revoked."
            ).format(where=where, doing=doing),
            _(
                "Ask the instructor for a fresh kubeconfig (ironclad-lab workshop provision "
                "issues tokens that expire), or check KUBECONFIG and --context."
            ),
            exc,
            action,
        )
    if "exceeded quota" in message:
        return ForbiddenError(
            _(
                "In {where}, cannot {doing}: the quota of {namespace} is used up ({message})."
            ).format(
                where=where,
                doing=doing,
                namespace=namespace or _("the namespace"),
                message=message,
            ),
            _(QUOTA_FIX),
            exc,
            action,
        )
    if "violates PodSecurity" in message:
        return ForbiddenError(
            _("In {where}, cannot {doing}: {message}.").format(
                where=where, doing=doing, message=message
            ),
            _(POD_SECURITY_FIX),
            exc,
            action,
        )
    rbac = RBAC_REFUSAL.search(message)
    if rbac:
        group = f" (API group {rbac['group']})" if rbac["group"] else ""
        in_namespace = rbac["namespace"] or namespace
        refused = f"{rbac['verb']} {rbac['resource']}{group}"
        if in_namespace:
            problem = _(
                "In {where}, the API server refused to {doing}: {user} may not {refused} in "
                "namespace {namespace} (403 Forbidden)."
            ).format(
                where=where,
                doing=doing,
                user=rbac["user"],
                refused=refused,
                namespace=in_namespace,
            )
        else:
            problem = _(
                "In {where}, the API server refused to {doing}: {user} may not {refused} "
                "cluster-wide (403 Forbidden)."
            ).format(where=where, doing=doing, user=rbac["user"], refused=refused)
    else:
        problem = _(
            "In {where}, the API server refused to {doing} in namespace {namespace} "
            "({status}: {message})."
        ).format(
            where=where, doing=doing, namespace=namespace or "?", status=exc.status, message=message
        )
    return ForbiddenError(problem, next_step or _(RBAC_FIX), exc, action)


def explain(
    exc: ApiException,
    action: str,
    namespace: str | None,
    context: str | None = None,
    next_steps: Mapping[int, str] | None = None,
) -> ApiError:
    """Any error answer of the API server as one `ApiError`: the context, the call, what the
    server said and what to do (`next_steps` replaces the fix for a status, e.g. the
    instructor's 403)."""
    if exc.status == 0:
        exc = handshake_answer(exc) or exc
    fix = (next_steps or {}).get(exc.status or 0)
    if exc.status in (401, 403):
        return api_error(exc, action, namespace, context, fix)
    message = api_message(exc)
    where = in_context(context)
    if namespace:
        where = _("{where}, namespace {namespace}").format(where=where, namespace=namespace)
    if exc.status == 404:
        return NotFoundError(
            _("In {where}, cannot {action}: it does not exist ({message}; 404 Not Found).").format(
                where=where, action=action, message=message
            ),
            fix or _(NOT_FOUND_FIX),
            exc,
            action,
        )
    if exc.status == 409:
        return ConflictError(
            _("In {where}, cannot {action}: {message} (409 Conflict).").format(
                where=where, action=action, message=message
            ),
            fix or _(CONFLICT_FIX),
            exc,
            action,
        )
    if exc.status == 422:
        causes = "; ".join(invalid_causes(exc)) or message
        return InvalidError(
            _(
                "In {where}, the API server refused to {action}: the object is invalid "
                "({causes}; 422 Unprocessable Entity)."
            ).format(where=where, action=action, causes=causes),
            fix or _(INVALID_FIX),
            exc,
            action,
        )
    return ApiError(
        _("In {where}, the API server failed to {action} ({status} {reason}: {message}).").format(
            where=where, action=action, status=exc.status, reason=exc.reason, message=message
        ),
        fix or _(SERVER_FIX),
        exc,
        action,
    )


def transport_error(exc: BaseException, context: str | None, server: str) -> ApiUnreachableError:
    """A request that got no HTTP answer (connection refused, unknown name, timeout, TLS) as one
    message naming the context, the server and the fix."""
    where = in_context(context)
    reason = getattr(exc, "reason", None)
    chain = [exc, reason, getattr(reason, "__cause__", None), exc.__cause__]
    text = " ".join(str(e) for e in chain if e is not None)
    if any(isinstance(e, urllib3.exceptions.SSLError) for e in chain) or "SSLError" in text:
        detail = TLS_DETAIL.search(text)
        return ApiUnreachableError(
            _("TLS to the API server of {where} ({server}) failed: {detail}.").format(
                where=where,
                server=server,
                detail=detail[0] if detail else _("its certificate is not trusted"),
            ),
            _(
                "The kubeconfig's certificate-authority does not match this server (a "
                "re-created cluster, or another cluster's kubeconfig): get a fresh one (kind: "
                "kind export kubeconfig --name ironclad; a workshop: ask the instructor)."
            ),
        )
    if "refused" in text.lower():
        cause = _("connection refused")
    elif "Name or service not known" in text or "NameResolution" in text:
        cause = _("its name does not resolve")
    elif "timed out" in text or "Timeout" in text:
        cause = _("timed out")
    else:
        cause = type(reason or exc).__name__
    return ApiUnreachableError(
        _("The API server of {where} ({server}) does not answer ({cause}).").format(
            where=where, server=server, cause=cause
        ),
        _(
            "On kind: is Docker running and the cluster up (docker ps; ironclad-lab up --target "
            "kind)? On a shared cluster: check your network or VPN and the server in your "
            "kubeconfig (kubectl --context {context} cluster-info)."
        ).format(context=context or "<context>"),
    )


def handshake_answer(exc: ApiException) -> ApiException | None:
    """The API server's answer to a websocket upgrade (a port-forward) it refused, which the
    client wraps as status 0 with websocket-client's text: "Handshake status 403 Forbidden
    -+-+- {headers} -+-+- {Status JSON}"; None when `exc` is not one."""
    refused = HANDSHAKE.search(exc.reason or "")
    if refused is None:
        return None
    answer = ApiException(status=int(refused["status"]), reason=refused["reason"].strip())
    answer.body = (exc.reason or "").rsplit(" -+-+- ", 1)[-1]
    return answer


def status_of(exc: ApiException) -> dict[str, Any]:
    """The API server's `Status` object in an error answer ({} when the body is not one)."""
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def api_message(exc: ApiException) -> str:
    """What the API server said (its Status message), else the HTTP reason."""
    return str(status_of(exc).get("message") or exc.reason)


def invalid_causes(exc: ApiException) -> list[str]:
    """A 422's field errors, `field: message` each (Status details.causes)."""
    causes = (status_of(exc).get("details") or {}).get("causes") or []
    return [f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes if isinstance(c, dict)]
