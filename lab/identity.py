"""The Kubernetes identity of a running lab: where every Kubernetes call of it goes.

Recorded once, when `lab up` starts a kind or cluster stack (in the state file, `lab.stack.State`),
and read back by everything that talks to that stack afterwards: `reset`, `status`, `down`, the
runner's diagnostics and run records, `lab.connect()` in a notebook. As in kr8s, the context and
the namespace travel together: nothing later re-reads the kernel's or the shell's environment
(`KUBECONFIG`, the kubeconfig's current context, `LAB_NAMESPACE`) to find the lab again.
`lab.k8s.NamespaceClient.connect(identity)` is the one place a client is built from it.

This module stays light (no Kubernetes client at import): `lab.stack` imports it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.i18n import _

DEFAULT_KUBECONFIG = "~/.kube/config"  # what kubectl and the client read without KUBECONFIG


@dataclass(frozen=True)
class Identity:
    """A lab on a cluster: the kubeconfig file(s) and the context in them (resolved: never
    "the current one"), the namespace, the image the backend and probe pods run, and whether
    the cluster is shared (the learner may touch their namespace and nothing else)."""

    context: str
    namespace: str
    kubeconfig: str  # a path, or several joined by os.pathsep (as KUBECONFIG may hold)
    image: str | None = None
    shared: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        try:
            return cls(
                context=str(data["context"]),
                namespace=str(data["namespace"]),
                kubeconfig=str(data["kubeconfig"]),
                image=data.get("image"),
                shared=bool(data.get("shared", False)),
            )
        except (KeyError, TypeError) as exc:
            raise LabError(
                _("The lab's recorded Kubernetes identity is incomplete (missing {key}).").format(
                    key=exc
                ),
                _("Stop the lab (ironclad-lab down) and start it again."),
            ) from exc


def kubeconfig_path(kubeconfig: str | None = None) -> str:
    """`kubeconfig`, else $KUBECONFIG as it is now, else ~/.kube/config (expanded)."""
    chosen = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return os.pathsep.join(str(Path(p).expanduser()) for p in chosen.split(os.pathsep) if p)


def resolve(
    namespace: str,
    context: str | None = None,
    *,
    image: str | None = None,
    shared: bool = False,
    kubeconfig: str | None = None,
    fix: str = "",
) -> Identity:
    """The identity to record: the kubeconfig's `context` (checked to exist) or, when None, its
    current context by name, so a later `kubectl config use-context` cannot move the lab.
    LabError (with `fix`) when the kubeconfig or the context is missing."""
    from kubernetes import config  # the client: only for the kind and cluster targets

    path = kubeconfig_path(kubeconfig)
    try:
        contexts, current = config.list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
    except (config.ConfigException, FileNotFoundError, OSError) as exc:
        raise LabError(
            _("No usable kubeconfig at {path}: {error}").format(path=path, error=exc), fix
        ) from exc
    names = [c["name"] for c in contexts]
    if context is None:
        if not current:
            raise LabError(
                _("The kubeconfig {path} has no current context.").format(path=path), fix
            )
        context = str(current["name"])
    elif context not in names:
        if names:
            problem = _("The kubeconfig {path} has no context {context!r} (it has: {names}).")
        else:
            problem = _("The kubeconfig {path} has no context {context!r} (it has none).")
        raise LabError(
            problem.format(path=path, context=context, names=", ".join(names)),
            fix,
        )
    return Identity(context, namespace, path, image, shared)
