"""What one component names in another exists and agrees (issue 19, item 8): not each object
alone, the wiring between them.

- Prometheus' discovery (manifests/components/monitoring/prometheus.yml) keeps a pod only when
  its `keep` rules match: every workload the SLO needs scraped carries those annotations, with a
  port the pod declares and a path the backend serves.
- Grafana's provisioned datasource names Prometheus' Service by its name and port, and that
  Service reaches the Prometheus container.
- metrics-server can read kind's kubelets: they serve self-signed certificates unless kind's
  cluster.yaml turns on serverTLSBootstrap, so metrics-server needs --kubelet-insecure-tls (and
  the address type kind's nodes report).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from lab import manifests, pod_templates
from lab.contract import JOB
from lab.settings import get_settings

SETTINGS = get_settings()
ANNOTATION = re.compile(r"__meta_kubernetes_pod_annotation_(\w+)")
SCRAPED = {"backend"}  # the workloads the SLO's job scrapes (ironclad-backend)


def annotation_name(meta_label: str) -> str:
    """`__meta_kubernetes_pod_annotation_prometheus_io_scrape` -> `prometheus.io/scrape` (the
    discovery sanitises `.` and `/` to `_`: the lab's annotations are prometheus.io/<word>)."""
    match = ANNOTATION.fullmatch(meta_label)
    assert match, meta_label
    prefix, _, word = match[1].rpartition("_")
    assert prefix == "prometheus_io", meta_label
    return f"prometheus.io/{word}"


def generated(objects: list[manifests.Obj], name: str) -> manifests.Obj:
    """The ConfigMap a generator named `name` made (kustomize appends a content hash)."""
    (found,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    return found


def backend_job(objects: list[manifests.Obj]) -> dict[str, object]:
    config = generated(objects, manifests.PROMETHEUS_CONFIGMAP)
    jobs = yaml.safe_load(config["data"]["prometheus.yml"])["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == JOB]
    return dict(job)


def test_every_workload_prometheus_must_scrape_passes_its_keep_rules(
    kind_objects: list[manifests.Obj], namespace: str
) -> None:
    job = backend_job(kind_objects)
    rules = list(job["relabel_configs"])  # type: ignore[call-overload]
    keeps = [r for r in rules if r.get("action") == "keep"]
    assert keeps, "the job keeps nothing: it would scrape every pod of the namespace"
    port_rule = next(
        r
        for r in rules
        if "__meta_kubernetes_pod_annotation_prometheus_io_port" in r.get("source_labels", [])
    )
    path_rule = next(r for r in rules if r.get("target_label") == "__metrics_path__")
    pods = {manifests.ident(p.workload)[2]: p for p in pod_templates.pods(kind_objects)}
    assert set(pods) >= SCRAPED
    for name in sorted(SCRAPED):
        pod = pods[name]
        for keep in keeps:
            (label,) = keep["source_labels"]
            value = pod.annotations.get(annotation_name(label))
            assert value is not None, (name, label)
            assert re.fullmatch(keep["regex"], value), (name, label, value)
        (_, port_label) = port_rule["source_labels"]
        port = int(pod.annotations[annotation_name(port_label)])
        assert port in pod.port_numbers, f"{name} scraped on {port}, declares {pod.ports}"
        (path_label,) = path_rule["source_labels"]
        assert pod.annotations[annotation_name(path_label)] == "/metrics"
    # and nothing else is kept: Prometheus, Grafana, PostgreSQL carry no scrape annotation
    for name, pod in pods.items():
        if name not in SCRAPED:
            assert "prometheus.io/scrape" not in pod.annotations, name


def test_grafanas_datasource_is_prometheus_service_name_and_port(
    kind_objects: list[manifests.Obj],
) -> None:
    provisioning = generated(kind_objects, "grafana-provisioning")
    datasources = yaml.safe_load(provisioning["data"]["datasources.yaml"])["datasources"]
    (prometheus_source,) = [d for d in datasources if d["type"] == "prometheus"]
    url = urlsplit(prometheus_source["url"])
    service = manifests.find(kind_objects, "Service", url.hostname or "")
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    selected = [
        p
        for p in pod_templates.pods(kind_objects)
        if pod_templates.selector_matches({"matchLabels": service["spec"]["selector"]}, p.labels)
    ]
    assert [manifests.ident(p.workload)[2] for p in selected] == ["prometheus"]
    target = port["targetPort"]
    (pod,) = selected
    assert (pod.ports[target] if isinstance(target, str) else target) == 9090


def test_metrics_server_can_read_kinds_kubelets(kind_objects: list[manifests.Obj]) -> None:
    cluster = yaml.safe_load(SETTINGS.kind_config.read_text())
    patches = "\n".join(cluster.get("kubeadmConfigPatches") or [])
    bootstrapped = re.search(r"serverTLSBootstrap:\s*true", patches) is not None
    server = manifests.find(kind_objects, "Deployment", "metrics-server", "kube-system")
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    # kind's kubelets serve a self-signed certificate: without serverTLSBootstrap (and its
    # approved CSRs) metrics-server must skip verifying it, or the HPA never gets a metric.
    assert bootstrapped or "--kubelet-insecure-tls" in args
    preferred = next(a for a in args if a.startswith("--kubelet-preferred-address-types="))
    assert preferred.split("=", 1)[1].split(",")[0] == "InternalIP"  # what kind's nodes report
