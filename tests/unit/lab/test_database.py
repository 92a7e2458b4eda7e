"""lab.database on a cluster target, against the recording fake API server: taking PostgreSQL
away applies the StatefulSet with replicas 0 and waits until its pod is gone; bringing it back
applies it with 1 and waits for the rollout; every call is one the learner Role allows, in the
lab's namespace only."""

from __future__ import annotations

from fake_kube_api import NS, FakeApiServer

from lab import database, manifests, rbac
from lab.k8s import NamespaceClient
from lab.session import Lab
from lab.settings import get_settings
from lab.targets import Endpoints


def test_take_down_scales_postgres_to_zero_and_bring_back_to_one(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    rendered = manifests.render("kind", get_settings(), namespace=NS)
    cluster.apply([manifests.find(rendered, "StatefulSet", "postgres")])
    assert cluster.ready_pod_names(database.PODS) == ["postgres-0"]
    env = Lab(Endpoints("kind", ""), NS, 0, "test", get_settings())
    env.__dict__["k8s"] = cluster  # the client `env.k8s` would build from the recorded identity

    down = database.take_down(env=env, timeout=10)
    assert down["touched"] == "StatefulSet/postgres scaled to 0"
    assert fake.statefulsets["postgres"]["spec"]["replicas"] == 0
    assert cluster.pods(database.PODS) == []

    back = database.bring_back(env=env, timeout=10)
    assert back["touched"] == "StatefulSet/postgres scaled to 1, postgres-0 ready"
    assert cluster.ready_pod_names(database.PODS) == ["postgres-0"]
    used = fake.rules()
    assert {namespace for _, namespace in used} == {NS}
    assert sorted({rule for rule, _ in used} - rbac.LEARNER_RULES) == []
