"""NetworkPolicy evaluation on pods' labels, and the paths the lab intends.

`evaluate(objects, connection)` says whether a connection is allowed and which policy decided
each direction; `lab_paths(objects, namespace)` lists the paths the lab means to allow or deny
for the workloads of `namespace`; `verdicts_frame()` turns verdicts into a table for notebooks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lab.i18n import _
from lab.manifests import Obj, ident
from lab.pod_templates import Pod, pods, selector_matches
from lab.settings import peer_namespace


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace + labels) or an address outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str | None = None


@dataclass(frozen=True)
class Connection:
    """A path to evaluate, with the verdict the lab intends (None: just report it)."""

    source: Endpoint
    target: Endpoint
    port: int
    protocol: str = "TCP"
    expected: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a connection is allowed, and which policies decided each direction."""

    connection: Connection
    egress_allowed: bool
    egress: str
    ingress_allowed: bool
    ingress: str
    deciding: tuple[tuple[str, str, str], ...] = ()  # (namespace, policy, direction)

    @property
    def allowed(self) -> bool:
        """Allowed only when the source may send and the target may receive."""
        return self.egress_allowed and self.ingress_allowed

    @property
    def expected(self) -> bool | None:
        """What the lab intends for this path."""
        return self.connection.expected

    def describe(self) -> str:
        """`source -> target:port/proto` in words."""
        c = self.connection
        return f"{c.source.name} -> {c.target.name}:{c.port}/{c.protocol}"


def _policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _peer_matches(
    peer: Mapping[str, Any],
    policy_ns: str,
    ep: Endpoint,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    if "ipBlock" in peer:
        if ep.ip is None:
            return False
        address = ipaddress.ip_address(ep.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except") or []
        )
    if ep.namespace is None:
        return False
    if "namespaceSelector" in peer:
        ns_labels = namespaces.get(ep.namespace, {"kubernetes.io/metadata.name": ep.namespace})
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif ep.namespace != policy_ns:
        return False
    return selector_matches(peer.get("podSelector", {}), ep.labels)


def _port_matches(rule_ports: Sequence[Mapping[str, Any]] | None, conn: Connection) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != conn.protocol:
            continue
        port = p.get("port")
        if isinstance(port, str):
            port = conn.target.ports.get(port)
        if port is None and "port" not in p:
            return True
        if port is not None and port <= conn.port <= p.get("endPort", port):
            return True
    return False


def _direction(
    policies: Sequence[Obj],
    namespaces: Mapping[str, Mapping[str, str]],
    conn: Connection,
    egress: bool,
) -> tuple[bool, str, list[str]]:
    """(allowed, explanation, isolating policy names) for one side of a connection."""
    subject, peer = (conn.source, conn.target) if egress else (conn.target, conn.source)
    ptype, rules_key, peers_key = (
        ("Egress", "egress", "to") if egress else ("Ingress", "ingress", "from")
    )
    if subject.namespace is None:
        return True, "outside the cluster", []
    isolating = [
        p
        for p in policies
        if ident(p)[1] == subject.namespace
        and ptype in _policy_types(p)
        and selector_matches(p["spec"].get("podSelector", {}), subject.labels)
    ]
    if not isolating:
        return True, _("no policy isolates {pod}").format(pod=subject.name), []
    for policy in isolating:
        for i, rule in enumerate(policy["spec"].get(rules_key) or []):
            peers = rule.get(peers_key)
            if (
                not peers
                or any(_peer_matches(pr, ident(policy)[1], peer, namespaces) for pr in peers)
            ) and _port_matches(rule.get("ports"), conn):
                name = ident(policy)[2]
                allowed = _("allowed by {policy} {rules}[{index}]").format(
                    policy=name, rules=rules_key, index=i
                )
                return True, allowed, [name]
    # Name the policies written for this pod before the namespace-wide ones (default deny).
    names = [ident(p)[2] for p in sorted(isolating, key=lambda p: not p["spec"].get("podSelector"))]
    return False, _("no rule of {policies} matches").format(policies=", ".join(names)), names


def namespace_labels(objects: Sequence[Obj]) -> dict[str, dict[str, str]]:
    """Labels of the Namespaces in `objects`, plus the automatic kubernetes.io/metadata.name."""
    return {
        o["metadata"]["name"]: {
            **(o["metadata"].get("labels") or {}),
            "kubernetes.io/metadata.name": o["metadata"]["name"],
        }
        for o in objects
        if o.get("kind") == "Namespace"
    }


def evaluate(objects: Sequence[Obj], conn: Connection) -> Verdict:
    """Evaluate one connection against the NetworkPolicies in `objects`."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    namespaces = namespace_labels(objects)
    out_ok, out_why, out_pols = _direction(policies, namespaces, conn, egress=True)
    in_ok, in_why, in_pols = _direction(policies, namespaces, conn, egress=False)
    deciding = [(conn.source.namespace or "", p, "egress") for p in out_pols]
    deciding += [(conn.target.namespace or "", p, "ingress") for p in in_pols]
    if not out_ok:  # the side that denied comes first
        deciding.sort(key=lambda d: d[2] != "egress")
    elif not in_ok:
        deciding.sort(key=lambda d: d[2] != "ingress")
    return Verdict(conn, out_ok, out_why, in_ok, in_why, tuple(deciding))


def endpoint(pod: Pod) -> Endpoint:
    """The `Endpoint` of a workload's pods."""
    return Endpoint(ident(pod.workload)[2], pod.namespace, pod.labels, pod.ports)


OTHER_NAMESPACE = Endpoint("pod in namespace other", "other", {"app": "client"})  # not ours
KUBE_DNS = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
INTERNET = Endpoint("internet (203.0.113.10)", ip="203.0.113.10")


def peer_of(objects: Sequence[Obj], namespace: str) -> str:
    """Lesson 05's peer namespace for this render: `default` for the kind render (it holds its
    own Namespace: the learner owns the cluster), `<namespace>-peer` for the cluster target's."""
    owned = any(o.get("kind") == "Namespace" for o in objects)
    return peer_namespace(namespace, shared=not owned)


def lab_paths(objects: Sequence[Obj], namespace: str) -> list[Connection]:
    """The paths the lab intends, for the workloads of `namespace` present in `objects`: the
    backend, Prometheus and Grafana answer their own namespace and its peer, nobody else."""
    eps = {endpoint(p).name: endpoint(p) for p in pods(objects) if p.namespace == namespace}
    peer = Endpoint(f"pod in peer namespace {peer_of(objects, namespace)}",
                    peer_of(objects, namespace), {"app": "client"})  # fmt: skip
    wanted: list[tuple[str | Endpoint, str | Endpoint, int, str, bool]] = [
        ("backend", "postgres", 5432, "TCP", True),
        ("backend", KUBE_DNS, 53, "UDP", True),
        ("backend", "postgres", 5433, "TCP", False),
        ("backend", INTERNET, 443, "TCP", False),
        ("backend", "prometheus", 9090, "TCP", False),
        ("backend", "grafana", 3000, "TCP", False),
        (peer, "backend", 3000, "TCP", True),
        (peer, "prometheus", 9090, "TCP", True),
        (peer, "grafana", 3000, "TCP", True),
        (peer, "postgres", 5432, "TCP", False),
        (OTHER_NAMESPACE, "backend", 3000, "TCP", False),  # another learner, say
        (OTHER_NAMESPACE, "prometheus", 9090, "TCP", False),
        (OTHER_NAMESPACE, "grafana", 3000, "TCP", False),
        (OTHER_NAMESPACE, "backend", 5432, "TCP", False),
        (OTHER_NAMESPACE, "postgres", 5432, "TCP", False),
        ("prometheus", "backend", 3000, "TCP", True),
        ("prometheus", "postgres", 5432, "TCP", False),
        ("grafana", "prometheus", 9090, "TCP", True),
        ("grafana", "postgres", 5432, "TCP", False),
        ("postgres", INTERNET, 443, "TCP", False),
        ("postgres", "backend", 3000, "TCP", False),
    ]

    def resolve(e: str | Endpoint) -> Endpoint | None:
        return e if isinstance(e, Endpoint) else eps.get(e)

    out = []
    for src, dst, port, proto, expected in wanted:
        s, d = resolve(src), resolve(dst)
        if s is not None and d is not None:
            out.append(Connection(s, d, port, proto, expected))
    return out


def evaluate_paths(objects: Sequence[Obj], paths: Sequence[Connection]) -> list[Verdict]:
    """The verdict of each of `paths` (e.g. `lab_paths(objects, namespace)`)."""
    return [evaluate(objects, c) for c in paths]


def verdicts_frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Verdicts as a table: source, target, port, protocol, allowed, expected, egress, ingress."""
    return pd.DataFrame(
        [
            {
                "source": v.connection.source.name,
                "target": v.connection.target.name,
                "port": v.connection.port,
                "protocol": v.connection.protocol,
                "allowed": v.allowed,
                "expected": v.expected,
                "egress": v.egress,
                "ingress": v.ingress,
            }
            for v in verdicts
        ],
        columns=[
            "source",
            "target",
            "port",
            "protocol",
            "allowed",
            "expected",
            "egress",
            "ingress",
        ],
    )
