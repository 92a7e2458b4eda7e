"""The kind render's NodePort (components/node-port) matches what the kind cluster config maps
and what the backend serves, and the shared cluster's render has none.

The schema checks of every rendered object (test_render.py) cover the Service and its
NetworkPolicy; the mapping the lab writes at `kind create cluster` is tested in
tests/unit/lab/test_kind_images.py. Whether kube-proxy really routes a connection from the host
port to a ready pod, and which source address the NetworkPolicy then sees, only a kind cluster
shows (the lab-kind workflow job runs lesson 04 through it)."""

from __future__ import annotations

import ipaddress

import yaml

from lab import manifests
from lab.pod_templates import pods, selector_matches
from lab.settings import get_settings
from lab.targets.kind import backend_node_port

SETTINGS = get_settings()


def test_the_node_port_service_routes_to_the_backends_pods(
    kind_objects: list[manifests.Obj],
) -> None:
    service = manifests.find(kind_objects, "Service", "backend-node-port")
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    assert port["nodePort"] == backend_node_port(SETTINGS.manifests)  # what kind maps
    assert 30000 <= port["nodePort"] <= 32767  # the API server's default NodePort range
    backend = next(p for p in pods(kind_objects) if p.ref == "Deployment/backend")
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, backend.labels)
    assert backend.ports[port["targetPort"]] == port["port"] == 3000
    clusterip = manifests.find(kind_objects, "Service", "backend")
    assert clusterip["spec"]["selector"] == service["spec"]["selector"]  # the same endpoints


def test_its_policy_admits_addresses_outside_the_pod_network_only(
    kind_objects: list[manifests.Obj],
) -> None:
    policy = manifests.find(kind_objects, "NetworkPolicy", "backend-from-node-port")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    pod_subnet = yaml.safe_load(SETTINGS.kind_config.read_text())["networking"]["podSubnet"]
    assert peer["ipBlock"] == {"cidr": "0.0.0.0/0", "except": [pod_subnet]}
    assert ipaddress.ip_network(pod_subnet).is_private
    assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]


def test_the_shared_clusters_render_exposes_nothing(cluster_objects: list[manifests.Obj]) -> None:
    """The workshop's quota and admission policy refuse NodePort and LoadBalancer Services:
    the cluster render must hold none (the policy's own test refuses the kind one)."""
    services = [o for o in cluster_objects if o["kind"] == "Service"]
    assert services
    assert {o["spec"].get("type", "ClusterIP") for o in services} == {"ClusterIP"}
    names = {manifests.ident(o)[2] for o in cluster_objects}
    assert not names & {"backend-node-port", "backend-from-node-port"}
