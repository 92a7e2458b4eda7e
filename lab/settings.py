"""Lab settings, read once from the environment (every value has a sensible default).

ENVIRONMENT below is the one list of the variables read here, with what each means: this
docstring, `ironclad-lab --help` and docs/cli.md show it from there (a test holds it to what
`Settings.from_env` reads).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from lab.errors import LabError
from lab.i18n import (
    LANGUAGES,
    LOCALE_VARIABLES,
    SOURCE_LANGUAGE,
    _,
    locale_language,
    notebooks_dir,
)

DEFAULT_NAMESPACE = "ironclad-demo"  # the namespace manifests/ is written for
PEER_SUFFIX = "-peer"
# Where the NetworkPolicies let pods send DNS: labels of the DNS pods in kube-system, or CIDRs.
DEFAULT_DNS = ("k8s-app=kube-dns",)  # a learner's second namespace on a shared cluster (lesson 05)
# A namespace name is an RFC 1123 label (what the API server accepts for Namespace names).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX = 63
N = TypeVar("N", int, float)
# What makes a directory a learner workspace (lab.workspace writes it: the version it came from,
# and under WORKSPACE_LANGUAGE the language `init` chose).
WORKSPACE_MARKER = "ironclad-lab.json"
WORKSPACE_LANGUAGE = "language"
OUTPUT_DIR = "build"  # what a run writes, under the root (a checkout's .gitignore names it)


def find_repo_root(start: Path | None = None) -> Path:
    """The lab's root, searched upwards: a learner workspace (`ironclad-lab init DIR`) or a
    checkout. From `start` if given; else first from the working directory (a workspace, or a
    checkout or its notebooks/, wins wherever the package is installed), then from this package
    (an editable install sits in its checkout); else the working directory (`is_lab_root`
    tells; the CLI refuses to work there)."""
    for origin in (start,) if start else (Path.cwd(), Path(__file__)):
        here = origin.resolve()
        for directory in (here, *here.parents):
            if is_lab_root(directory):
                return directory
    return Path.cwd()


def is_checkout(directory: Path) -> bool:
    """Whether `directory` holds the lab's checkout (its pyproject.toml and manifests/)."""
    return (directory / "pyproject.toml").is_file() and (directory / "manifests").is_dir()


def is_workspace(directory: Path) -> bool:
    """Whether `directory` is a learner workspace `ironclad-lab init` made (its marker file)."""
    return (directory / WORKSPACE_MARKER).is_file() and (directory / "manifests").is_dir()


def is_lab_root(directory: Path) -> bool:
    """Whether the lab can run from `directory`: a workspace or a checkout."""
    return is_workspace(directory) or is_checkout(directory)


@dataclass(frozen=True)
class Settings:
    """Where things are and how long to wait for them."""

    repo_root: Path
    target: str = "auto"
    namespace: str = DEFAULT_NAMESPACE
    state_file_override: Path | None = None
    replicas: int = 3
    ready_timeout: float = 60.0
    rollout_timeout: float = 300.0
    restart_delay: float = 15.0
    cluster_name: str = "ironclad"
    kind_version: str = "v0.33.0"
    kind_download_url: str | None = None
    # The backend image as manifests/ name it: what the kind target builds from
    # backend/Dockerfile and loads into its nodes (and what probe pods run).
    built_image: str = "ironclad-backend:lab"
    # The backend image a shared cluster pulls from a registry instead (LAB_IMAGE, `--image`):
    # nothing is published from this repository, see above.
    registry_image: str | None = None
    kube_context: str | None = None  # the cluster target's kubeconfig context (None: current)
    kubeconfig: str | None = None  # `up --kubeconfig` (None: $KUBECONFIG, else ~/.kube/config)
    keep: bool = False  # the cluster target leaves its objects in place on exit (`up --keep`)
    registry_mirror: str | None = None
    dns: tuple[str, ...] = DEFAULT_DNS  # where pods may send DNS (LAB_DNS, see the docstring)
    images_archive: Path | None = None  # kind: an `images save` archive to load (`--archive`)
    lang: str = SOURCE_LANGUAGE  # the learner's language (lab.i18n.LANGUAGES; see learner_language)

    @property
    def state_file(self) -> Path:
        return self.state_file_override or self.repo_root / OUTPUT_DIR / "lab-state.json"

    @property
    def manifests(self) -> Path:
        return self.repo_root / "manifests"

    @property
    def runbooks_dir(self) -> Path:
        """One runbook per alert, `<Alert>.md` (the rules' runbook_url points at them)."""
        return self.repo_root / "docs" / "runbooks"

    @property
    def rules_dir(self) -> Path:
        """The generated Prometheus rule files (`ironclad-lab generate rules` writes them)."""
        return self.manifests / "monitoring" / "rules"

    @property
    def notebooks_dir(self) -> Path:
        """The lesson notebooks in the learner's language: notebooks/ (English, the source) or
        notebooks/<lang>/ (generated from it and the catalogs)."""
        return notebooks_dir(self.repo_root, self.lang)

    @property
    def report_dir(self) -> Path:
        return self.repo_root / OUTPUT_DIR / "lab-report"

    @property
    def kind_config(self) -> Path:
        return self.manifests / "kind" / "cluster.yaml"

    @property
    def kind_overlay(self) -> Path:
        return self.manifests / "overlays" / "kind"

    @property
    def local_prometheus_config(self) -> Path:
        return self.manifests / "monitoring" / "local" / "prometheus.yml"

    @property
    def dockerfile(self) -> Path:
        return self.repo_root / "backend" / "Dockerfile"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the LAB_* variables listed in the module docstring."""
        environ = os.environ if environ is None else environ
        namespace = check_namespace(
            environ.get("LAB_NAMESPACE") or DEFAULT_NAMESPACE, "LAB_NAMESPACE"
        )
        state = environ.get("LAB_STATE_FILE")
        root = Path(environ["LAB_REPO_ROOT"]) if "LAB_REPO_ROOT" in environ else find_repo_root()
        return cls(
            repo_root=root,
            target=environ.get("LAB_TARGET") or cls.target,  # checked where it is resolved
            namespace=namespace,
            registry_image=environ.get("LAB_IMAGE") or None,
            kube_context=environ.get("LAB_KUBE_CONTEXT") or None,
            state_file_override=Path(state) if state else None,
            replicas=_number(environ, "LAB_REPLICAS", cls.replicas, int),
            ready_timeout=_number(environ, "LAB_READY_TIMEOUT", cls.ready_timeout, float),
            rollout_timeout=_number(environ, "LAB_ROLLOUT_TIMEOUT", cls.rollout_timeout, float),
            restart_delay=_number(environ, "LAB_RESTART_DELAY", cls.restart_delay, float),
            kind_version=environ.get("LAB_KIND_VERSION", cls.kind_version),
            kind_download_url=environ.get("KIND_DOWNLOAD_URL") or None,
            registry_mirror=environ.get("LAB_REGISTRY_MIRROR") or None,
            dns=tuple(d.strip() for d in environ.get("LAB_DNS", "").split(",") if d.strip())
            or DEFAULT_DNS,
            lang=learner_language(environ, root),
        )


# Every environment variable `Settings.from_env` reads, and what it sets.
ENVIRONMENT = {
    "LAB_TARGET": "where the lab runs: auto (the default) or a target `--target` accepts",
    "LAB_NAMESPACE": f"where the lab's objects go (default: {DEFAULT_NAMESPACE}; a DNS-1123 "
    "label, checked before anything is applied)",
    "LAB_IMAGE": "the backend image the cluster target runs (no image is published from this "
    "repository: an instructor pushes one to a registry the shared cluster pulls from)",
    "LAB_KUBE_CONTEXT": "the cluster target's kubeconfig context (default: the current one)",
    "LAB_STATE_FILE": "where the running lab is recorded (default: build/lab-state.json)",
    "LAB_REPLICAS": f"local backend replicas (default: {Settings.replicas})",
    "LAB_READY_TIMEOUT": "s to wait for a process or pod to be ready (default: "
    f"{Settings.ready_timeout:g})",
    "LAB_ROLLOUT_TIMEOUT": f"s to wait for a rollout (default: {Settings.rollout_timeout:g})",
    "LAB_RESTART_DELAY": "the local replicas' crash back-off, first step in s (default: "
    f"{Settings.restart_delay:g}): a replica's first crash is restarted at once, each further "
    "one after this, doubled per crash, as the kubelet does; one that exits with code 0 is "
    "replaced at once",
    "LAB_KIND_VERSION": "the kind release downloaded when none >= v0.24 is on PATH "
    f"(default: {Settings.kind_version})",
    "KIND_DOWNLOAD_URL": "where to download kind from instead of its release page (a mirror)",
    "LAB_REGISTRY_MIRROR": "a classroom pull-through registry mirror for the kind nodes "
    "(lab.targets.kind_nodes.parse_mirrors)",
    "LAB_DNS": "where the NetworkPolicies let pods send DNS: comma-separated labels key=value of "
    "the DNS pods in kube-system, or CIDRs (default: k8s-app=kube-dns; with NodeLocal DNSCache "
    "e.g. 169.254.20.10/32,k8s-app=kube-dns)",
    "LAB_REPO_ROOT": "the checkout or workspace holding manifests/ and notebooks/ (default: "
    "searched upwards from the working directory)",
    "LAB_LANG": f"the learner's language, {' or '.join(LANGUAGES)}: what the lab says and which "
    "notebooks `run` runs (default: the workspace's, `init --lang`; else the locale's; else "
    f"{SOURCE_LANGUAGE})",
    **dict.fromkeys(
        LOCALE_VARIABLES,
        f"the locale, read as gettext reads it ({', '.join(LOCALE_VARIABLES)}, in this order): "
        "its first language the lab speaks is the default of LAB_LANG outside a workspace that "
        "records one",
    ),
}


def learner_language(environ: Mapping[str, str], root: Path) -> str:
    """The learner's language: LAB_LANG (checked), else the one the workspace at `root`
    records (`ironclad-lab init --lang`), else the locale's (lab.i18n.locale_language), else
    English. A `--lang` flag, where a command has one, wins over all of them (lab.cli)."""
    asked = environ.get("LAB_LANG")
    if asked:
        return check_language(asked, "LAB_LANG")
    return workspace_language(root) or locale_language(environ)


def check_language(code: str, source: str) -> str:
    """`code` when the lab speaks it; else LabError naming `source` and the accepted codes."""
    if code in LANGUAGES:
        return code
    accepted = ", ".join(f"{c} ({name})" for c, name in LANGUAGES.items())
    raise LabError(
        _("{source}={code!r} is not a language the lab speaks.").format(source=source, code=code),
        _("Use one of: {accepted}; or unset it.").format(accepted=accepted),
    )


def workspace_language(root: Path) -> str | None:
    """The language the workspace at `root` records (its marker's WORKSPACE_LANGUAGE), None
    when `root` is no workspace or records none; LabError for a marker that is not readable."""
    if not is_workspace(root):
        return None
    marker = root / WORKSPACE_MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(
            _("{marker} is not the JSON `ironclad-lab init` writes ({error}).").format(
                marker=marker, error=exc
            ),
            _("Restore it (it names the version and the language), or make a new workspace."),
        ) from exc
    code = recorded.get(WORKSPACE_LANGUAGE) if isinstance(recorded, dict) else None
    where = _("{key} in {marker}").format(key=WORKSPACE_LANGUAGE, marker=marker)
    return check_language(str(code), where) if code else None


def peer_namespace(namespace: str, shared: bool) -> str:
    """Where lesson 05 probes the backend from another namespace: `default` on a cluster the
    learner owns (kind), `<namespace>-peer` on a shared cluster (provisioned for each learner
    with the same Role, since a learner may touch no other namespace)."""
    return f"{namespace}{PEER_SUFFIX}" if shared else "default"


def check_namespace(name: str, source: str | None = None) -> str:
    """`name` when it is a valid namespace name (an RFC 1123 label, leaving room for the
    `-peer` suffix); else LabError saying why, before anything is rendered or applied."""
    longest = DNS_LABEL_MAX - len(PEER_SUFFIX)
    if DNS_LABEL.fullmatch(name) and len(name) <= longest:
        return name
    raise LabError(
        _("{source}={name!r} is not a valid namespace name.").format(
            source=source or _("the namespace"), name=name
        ),
        _(
            "Use at most {longest} characters of a-z, 0-9 and '-', starting and ending with a "
            "letter or digit (e.g. learner-07)."
        ).format(longest=longest),
    )


def _number(environ: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = kind(-1)
    if value < 0:
        problem = (
            _("{name}={raw!r} is not a non-negative whole number.")
            if kind is int
            else _("{name}={raw!r} is not a non-negative number.")
        )
        raise LabError(
            problem.format(name=name, raw=raw),
            _("Set {name} to a number such as {default}, or unset it.").format(
                name=name, default=default
            ),
        )
    return value


@cache
def get_settings() -> Settings:
    """The settings of this process (read from the environment once)."""
    return Settings.from_env()
