"""The targets' table (`lab.targets.spec`): one row per target, read instead of its name."""

from __future__ import annotations

import dataclasses

import pytest

from lab.errors import LabError
from lab.manifests import RENDERABLE
from lab.settings import get_settings
from lab.targets import make_target
from lab.targets.spec import (
    AUTO,
    NAMES,
    SPECS,
    check_name,
    requested_spec,
    satisfied_by,
    spec,
    up_timeout,
)


def test_every_row_is_a_target_make_target_builds_under_its_own_name() -> None:
    settings = get_settings()
    for name in SPECS:
        assert make_target(name, settings).name == name
    assert NAMES == (AUTO, "local", "kind", "cluster")


def test_every_cluster_target_applies_an_overlay_the_manifests_render() -> None:
    for row in SPECS.values():
        assert (row.overlay is not None) == row.has_cluster, row.name
        if row.overlay is not None:
            overlay = RENDERABLE[row.overlay]
            assert overlay.stack, row.name  # the whole stack, not the app alone
            assert overlay.owns_cluster is not row.shared, row.name  # the peer rules agree


def test_auto_picks_no_shared_cluster_and_waits_as_long_as_its_slowest_pick() -> None:
    assert [r.name for r in SPECS.values() if r.picked_by_auto] == ["local", "kind"]
    assert up_timeout(AUTO) == max(spec("local").up_timeout, spec("kind").up_timeout)
    assert up_timeout("cluster") == spec("cluster").up_timeout


def test_the_peer_namespace_is_default_on_an_own_cluster_and_a_second_one_when_shared() -> None:
    assert spec("kind").peer_namespace("learner-07") == "default"
    assert spec("cluster").peer_namespace("learner-07") == "learner-07-peer"


def test_only_processes_run_side_by_side() -> None:
    assert [r.name for r in SPECS.values() if r.lanes] == ["local"]


@pytest.mark.parametrize(
    ("requested", "running", "expected"),
    [(None, "kind", True), (AUTO, "local", True), ("kind", "kind", True), ("kind", "local", False)],
)
def test_a_request_is_satisfied_by_its_own_target_or_any_when_open(
    requested: str | None, running: str, expected: bool
) -> None:
    assert satisfied_by(requested, running) is expected


def test_names_are_checked_with_the_list_of_targets() -> None:
    assert requested_spec(AUTO) is None
    assert requested_spec("kind") == spec("kind")
    with pytest.raises(LabError, match=r"'minikube' is not a target \(LAB_TARGET\)") as info:
        requested_spec("minikube", "LAB_TARGET")
    assert info.value.next_step == "Use one of: auto, local, kind, cluster."
    with pytest.raises(LabError, match="Unknown target 'auto'"):
        spec(AUTO)  # resolve it first (`choose`)
    assert check_name("cluster") == "cluster"


def test_a_row_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec("local").lanes = False  # type: ignore[misc]
