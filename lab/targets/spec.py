"""What differs between the targets, one row each: the rest of the lab reads these facts.

Nothing outside `lab/targets/` compares a target's name (tests/unit/lab/test_target_names.py
keeps it so): it asks `spec(name)` what that target has. A new target is one class (its
`up`/`down`, see `lab.targets.base.Target`) and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.errors import LabError
from lab.i18n import _
from lab.settings import peer_namespace

AUTO = "auto"  # not a target: `lab.targets.choose` resolves it to kind or local, and says why


@dataclass(frozen=True)
class TargetSpec:
    """One target's facts."""

    name: str
    has_cluster: bool  # Kubernetes objects: needs-cluster cells run, `Lab.k8s` connects
    shared: bool  # someone else's cluster: one namespace only, runs recorded for the instructor
    overlay: str | None  # what `up` applies (`lab.manifests.render`); None: processes
    up_timeout: float  # s a `lab up` may take to be ready (kind may create a cluster, build)
    cell_budget: float  # the runner's default per-cell budget (s)
    run_budget: float  # the runner's default whole-run budget (s)
    lanes: bool  # `run --lanes N`: several stacks side by side (processes only)
    picked_by_auto: bool  # `auto` may choose it (never a shared cluster)
    loads_image_archive: bool  # `--archive FILE`: an `images save` archive loaded into the nodes
    pulls_image: bool  # the backend image comes from a registry (`--image`, LAB_IMAGE)
    # How load reaches the backend's real Service (`lab.service_load`): "node-port" from this
    # machine through a NodePort (kube-proxy picks the endpoints), "job" from a load-generator
    # Job inside the namespace (a shared cluster refuses NodePorts), "" nowhere (no Service).
    service_load: str

    def peer_namespace(self, namespace: str) -> str:
        """Where lesson 05 probes the backend from another namespace (`settings.peer_namespace`:
        `default` on a cluster of the learner's own, `<namespace>-peer` on a shared one)."""
        return peer_namespace(namespace, shared=self.shared)


SPECS = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "local",
            has_cluster=False,
            shared=False,
            overlay=None,
            up_timeout=180.0,
            cell_budget=300.0,
            run_budget=1200.0,
            lanes=True,
            picked_by_auto=True,
            loads_image_archive=False,
            pulls_image=False,
            service_load="",
        ),
        TargetSpec(
            "kind",
            has_cluster=True,
            shared=False,
            overlay="kind",
            up_timeout=1800.0,
            cell_budget=900.0,
            run_budget=5400.0,
            lanes=False,
            picked_by_auto=True,
            loads_image_archive=True,
            pulls_image=False,
            service_load="node-port",
        ),
        TargetSpec(  # a shared cluster is as slow as kind, and its nodes pull the image
            "cluster",
            has_cluster=True,
            shared=True,
            overlay="cluster",
            up_timeout=900.0,
            cell_budget=900.0,
            run_budget=5400.0,
            lanes=False,
            picked_by_auto=False,
            loads_image_archive=False,
            pulls_image=True,
            service_load="job",
        ),
    )
}
NAMES = (AUTO, *SPECS)  # what --target and LAB_TARGET accept


def spec(name: str) -> TargetSpec:
    """The row of target `name` (LabError naming the targets for anything else, `auto` too:
    resolve it first with `choose`)."""
    try:
        return SPECS[name]
    except KeyError:
        raise LabError(
            _("Unknown target {name}.").format(name=repr(name)),
            _("Use one of: {targets} (or {auto}).").format(targets=", ".join(SPECS), auto=AUTO),
        ) from None


def check_name(name: str, source: str = "--target") -> str:
    """`name` when `--target` / LAB_TARGET may say it (a target or `auto`), else LabError."""
    if name in NAMES:
        return name
    raise LabError(
        _("{name} is not a target ({source}).").format(name=repr(name), source=source),
        _("Use one of: {targets}.").format(targets=", ".join(NAMES)),
    )


def requested_spec(requested: str, source: str = "--target") -> TargetSpec | None:
    """The row `requested` names; None for `auto` (not resolved yet); LabError for a name that
    is neither."""
    return None if check_name(requested, source) == AUTO else spec(requested)


def up_timeout(requested: str) -> float:
    """How long a `lab up` for `requested` may take to be ready (`auto`: the longest of the
    targets it may pick)."""
    if requested == AUTO:
        return max(s.up_timeout for s in SPECS.values() if s.picked_by_auto)
    return spec(requested).up_timeout


def satisfied_by(requested: str | None, running: str) -> bool:
    """Whether a lab running on `running` is what `requested` asks for (None and `auto`
    accept any)."""
    return requested in (None, AUTO, running)
