"""The Kubernetes API's failures, explained: each names the context, the cause and the fix.

`api_error` turns a refusal (401/403: credentials, RBAC, quota, Pod Security) into a
`ForbiddenError`; `transport_error` a request with no HTTP answer into an `ApiUnreachableError`.
"""

from __future__ import annotations

import re

import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError

QUOTA_FIX = (
    "Free room in the namespace (ironclad-lab down, or delete leftover objects), or ask the "
    "instructor to raise its ResourceQuota (ironclad-lab workshop provision sizes it)."
)
IMAGE_FIX = (
    "Check the image name in the event. On a shared cluster the backend image comes from a "
    "registry (nothing is published from this repository): push backend/Dockerfile's image "
    "where the cluster can pull it and pass --image REF. On kind, `ironclad-lab up --target "
    "kind` loads it; offline, `ironclad-lab images load --archive FILE`."
)
POD_SECURITY_FIX = (
    "The lab's pods meet Pod Security 'restricted'; a change of yours (or a policy of the "
    "cluster) does not: compare the pod spec with lab.lint's namespace-restricted rules."
)


class ClusterWideError(LabError):
    """A call that needs more than one namespace, on a shared cluster where the learner's Role
    grants only their namespace."""


class ForbiddenError(ApiException, LabError):
    """The API server refused a call (HTTP 401/403: credentials, RBAC, quota, Pod Security).

    Still the `ApiException` it was (status, reason, body: code that checks them keeps
    working) and a `LabError` whose message names the context, the cause and the fix.
    """

    def __init__(self, problem: str, next_step: str, refused: ApiException | None = None) -> None:
        ApiException.__init__(
            self,
            getattr(refused, "status", None),
            getattr(refused, "reason", None),
            body=getattr(refused, "body", None),
        )
        self.headers = getattr(refused, "headers", None)
        LabError.__init__(self, problem, next_step)

    def __str__(self) -> str:
        return Exception.__str__(self)  # LabError's "problem → next step", not ApiException's


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
TLS_DETAIL = re.compile(r"certificate verify failed[^')\]\n]*|hostname mismatch[^')\]\n]*")


def in_context(context: str | None) -> str:
    return f"context {context}" if context else "the cluster"


def api_error(
    exc: ApiException, action: str | None, namespace: str | None, context: str | None = None
) -> ForbiddenError:
    """A refusal (401/403) as one message: the context, what was refused, why, and the fix."""
    message = api_message(exc)
    where = in_context(context)
    doing = action or "do this"
    if exc.status == 401:
        return ForbiddenError(
            f"The API server of {where} did not accept your credentials (401 Unauthorized, "
            f"trying to {doing}): the token expired or was revoked.",
            "Ask the instructor for a fresh kubeconfig (ironclad-lab workshop provision issues "
            "tokens that expire), or check KUBECONFIG and --context.",
            exc,
        )
    if "exceeded quota" in message:
        return ForbiddenError(
            f"In {where}, cannot {doing}: the quota of {namespace or 'the namespace'} is used up "
            f"({message}).",
            QUOTA_FIX,
            exc,
        )
    if "violates PodSecurity" in message:
        return ForbiddenError(f"In {where}, cannot {doing}: {message}.", POD_SECURITY_FIX, exc)
    rbac = RBAC_REFUSAL.search(message)
    if rbac:
        group = f" (API group {rbac['group']})" if rbac["group"] else ""
        in_namespace = rbac["namespace"] or namespace
        scope = f"in namespace {in_namespace}" if in_namespace else "cluster-wide"
        refused = f"{rbac['verb']} {rbac['resource']}{group} {scope}"
        problem = (
            f"In {where}, the API server refused to {doing}: {rbac['user']} may not {refused} "
            "(403 Forbidden)."
        )
    else:
        problem = (
            f"In {where}, the API server refused to {doing} in namespace {namespace or '?'} "
            f"({exc.status}: {message})."
        )
    return ForbiddenError(
        problem,
        "Check --context and --namespace (kubectl config get-contexts); on a shared cluster a "
        "learner's Role grants exactly what lab.rbac lists, in their own namespace: ask the "
        "instructor to re-run ironclad-lab workshop provision.",
        exc,
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
            f"TLS to the API server of {where} ({server}) failed: "
            f"{detail[0] if detail else 'its certificate is not trusted'}.",
            "The kubeconfig's certificate-authority does not match this server (a re-created "
            "cluster, or another cluster's kubeconfig): get a fresh one (kind: kind export "
            "kubeconfig --name ironclad; a workshop: ask the instructor).",
        )
    if "refused" in text.lower():
        cause = "connection refused"
    elif "Name or service not known" in text or "NameResolution" in text:
        cause = "its name does not resolve"
    elif "timed out" in text or "Timeout" in text:
        cause = "timed out"
    else:
        cause = type(reason or exc).__name__
    return ApiUnreachableError(
        f"The API server of {where} ({server}) does not answer ({cause}).",
        "On kind: is Docker running and the cluster up (docker ps; ironclad-lab up --target "
        "kind)? On a shared cluster: check your network or VPN and the server in your kubeconfig "
        f"(kubectl --context {context or '<context>'} cluster-info).",
    )


def api_message(exc: ApiException) -> str:
    try:
        return str(yaml.safe_load(exc.body or "{}").get("message", exc.reason))
    except (yaml.YAMLError, AttributeError):
        return str(exc.reason)
