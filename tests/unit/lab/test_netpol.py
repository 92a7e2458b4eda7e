"""lab.netpol: the NetworkPolicy evaluator's semantics on small hand-written policies, and the
lab's intended paths on the kind overlay."""

from __future__ import annotations

from typing import Any

from lab import manifests, netpol
from lab.settings import get_settings

NS = "ironclad-demo"
KIND = manifests.render("kind", get_settings())


# --- the evaluator on hand-written policies -------------------------------------------------


def policy(name: str, spec: dict[str, Any], namespace: str = "a") -> manifests.Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


WEB = netpol.Endpoint("web", "a", {"app": "web", "tier": "front"}, {"http": 8080})
DB = netpol.Endpoint("db", "a", {"app": "db"}, {"pg": 5432})
OUTSIDE = netpol.Endpoint("outside", ip="10.1.2.3")


def allowed(
    objects: list[manifests.Obj],
    src: netpol.Endpoint,
    dst: netpol.Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    return netpol.evaluate(objects, netpol.Connection(src, dst, port, protocol)).allowed


def test_no_policy_allows_everything() -> None:
    assert allowed([], WEB, DB, 5432)


def test_ingress_isolation_with_named_port_and_expressions() -> None:
    pol = policy(
        "db",
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "tier", "operator": "In", "values": ["front"]}
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": "pg"}],
                }
            ],
        },
    )
    assert allowed([pol], WEB, DB, 5432)
    assert not allowed([pol], WEB, DB, 5433)
    assert not allowed([pol], WEB, DB, 5432, "UDP")
    assert not allowed([pol], netpol.Endpoint("other", "a", {"tier": "back"}), DB, 5432)
    assert allowed([pol], DB, WEB, 8080)  # the policy does not isolate web


def test_egress_ip_block_with_except_and_port_range() -> None:
    pol = policy(
        "web",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}}],
                    "ports": [{"port": 8000, "endPort": 8100}],
                }
            ],
        },
    )
    assert allowed([pol], WEB, OUTSIDE, 8080)
    assert not allowed([pol], WEB, OUTSIDE, 9000)
    assert not allowed([pol], WEB, netpol.Endpoint("blocked", ip="10.9.1.1"), 8080)
    assert not allowed([pol], WEB, DB, 8080), "pods never match ipBlock peers here"


def test_namespace_selector_uses_the_automatic_name_label() -> None:
    pol = policy(
        "db",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}}
                    ]
                }
            ],
        },
    )
    assert allowed([pol], netpol.Endpoint("b-pod", "b"), DB, 1)
    assert not allowed([pol], netpol.Endpoint("c-pod", "c"), DB, 1)
    assert not allowed([pol], WEB, DB, 1), "same namespace is not namespace b"


def test_verdicts_frame_lists_each_path() -> None:
    frame = netpol.verdicts_frame(netpol.evaluate_paths(KIND, netpol.lab_paths(KIND, NS)))
    row = frame[(frame.source == "backend") & (frame.target == "postgres") & (frame.port == 5432)]
    assert row.allowed.tolist() == [True]
    assert row.expected.tolist() == [True]
    assert (frame.allowed == frame.expected).all()


def test_lab_paths_belong_to_the_namespace_asked_for() -> None:
    paths = netpol.lab_paths(KIND, NS)
    assert {c.source.namespace for c in paths if c.source.name == "backend"} == {NS}
    assert netpol.lab_paths(KIND, "learner-07") == []  # nothing of the lab runs there
