"""A learner's services answer only their own namespaces (issue 19, item 2): the backend,
Prometheus and Grafana accept traffic from the learner's namespace and its peer, and from no
other learner's; `lab.lint` reports the old rule that let every namespace in.

Evaluated with `lab.netpol` on the rendered policies (what the API server would store); a CNI
enforcing them is the `kind` workflow job's (lesson 05's probes)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from lab import manifests, pod_templates
from lab.lint import lint
from lab.netpol import KUBE_DNS, Connection, Endpoint, endpoint, evaluate
from lab.settings import get_settings

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

SETTINGS = get_settings()
LEARNER, NEIGHBOUR = "learner-07", "learner-08"
SERVICES = (("backend", 3000), ("prometheus", 9090), ("grafana", 3000))


@pytest.fixture(scope="module")
def two_learners() -> list[manifests.Obj]:
    """Two learners' cluster renders, side by side as on one shared cluster."""
    return [
        *manifests.render("cluster", SETTINGS, LEARNER),
        *manifests.render("cluster", SETTINGS, NEIGHBOUR),
    ]


def workload(objects: list[manifests.Obj], name: str, namespace: str) -> Endpoint:
    return next(
        endpoint(p)
        for p in pod_templates.pods(objects)
        if (manifests.ident(p.workload)[2], p.namespace) == (name, namespace)
    )


@pytest.mark.parametrize(("service", "port"), SERVICES)
def test_another_learners_pods_are_refused_and_the_peer_is_let_in(
    two_learners: list[manifests.Obj], service: str, port: int
) -> None:
    target = workload(two_learners, service, LEARNER)
    # the neighbour's own Prometheus, with the egress its policy allows: only our ingress says no
    neighbour = workload(two_learners, "prometheus", NEIGHBOUR)
    refused = evaluate(two_learners, Connection(neighbour, target, port))
    assert not refused.ingress_allowed, refused.ingress
    peer = Endpoint("client", f"{LEARNER}-peer", {"app": "client"})
    assert evaluate(two_learners, Connection(peer, target, port)).allowed
    own = workload(two_learners, "grafana" if service != "grafana" else "backend", LEARNER)
    assert evaluate(two_learners, Connection(own, target, port)).ingress_allowed


def test_lint_reports_a_service_open_to_every_namespace() -> None:
    objects = copy.deepcopy(manifests.render("cluster", SETTINGS, LEARNER))
    assert lint(objects, LEARNER) == []
    policy = manifests.find(objects, "NetworkPolicy", "backend")
    policy["spec"]["ingress"] = [{"ports": [{"protocol": "TCP", "port": 3000}]}]  # the old rule
    found = [(f.rule, f.message) for f in lint(objects, LEARNER)]
    assert [m for rule, m in found if rule == "network-policy-paths"] == [
        "pod in namespace other -> backend:3000/TCP must be denied but is allowed (egress: no "
        "policy isolates pod in namespace other; ingress: allowed by backend ingress[0])"
    ], found


def test_dns_egress_follows_lab_dns_for_nodelocal_dnscache() -> None:
    """LAB_DNS moves every DNS egress rule: NodeLocal DNSCache answers on a link-local address
    from the host network (an ipBlock), which the default kube-dns pod selector never matches."""
    nodelocal = Endpoint("node-local-dns", ip="169.254.20.10")
    default = manifests.render("cluster", SETTINGS, LEARNER)
    cached = manifests.render(
        "cluster", replace(SETTINGS, dns=("169.254.20.10/32", "k8s-app=kube-dns")), LEARNER
    )
    for name in ("backend", "prometheus", "grafana"):
        pod = workload(default, name, LEARNER)
        assert not evaluate(default, Connection(pod, nodelocal, 53, "UDP")).allowed
        assert evaluate(cached, Connection(pod, nodelocal, 53, "UDP")).allowed, name
        assert evaluate(cached, Connection(pod, KUBE_DNS, 53, "UDP")).allowed, name
    assert lint(cached, LEARNER) == []
