"""Per-stack credentials (issue 19, item 2): no Secret value is committed, every render generates
its own, a learner's rendered objects carry nothing another learner's share, and a running
stack's values are kept when it is rendered again (`up` after `--keep`, `reset`)."""

from __future__ import annotations

import base64
import json

from lab import manifests
from lab.credentials import GENERATED, generate
from lab.settings import get_settings

SETTINGS = get_settings()


def secret_values(objects: list[manifests.Obj]) -> dict[tuple[str, str], str]:
    """(Secret, key) -> the decoded value, of every Secret in `objects`."""
    return {
        (o["metadata"]["name"], key): base64.b64decode(value).decode()
        for o in objects
        if o["kind"] == "Secret"
        for key, value in (o.get("data") or {}).items()
    }


def test_two_learners_renders_share_no_secret_and_none_is_committed() -> None:
    first = secret_values(manifests.render("cluster", SETTINGS, "learner-01"))
    second = secret_values(manifests.render("cluster", SETTINGS, "learner-02"))
    generated = {(name, key) for name, keys in GENERATED.items() for key in keys}
    assert generated <= set(first)
    assert generated <= set(second)
    committed = "\n".join(p.read_text() for p in SETTINGS.manifests.rglob("*") if p.is_file())
    for where in generated:
        assert first[where] != second[where], where
        assert len(first[where]) >= 32
        assert first[where] not in committed
    other_learner = json.dumps(manifests.render("cluster", SETTINGS, "learner-02"))
    assert not [v for k, v in first.items() if k in generated and v in other_learner]


def test_a_stack_rendered_again_keeps_its_credentials() -> None:
    credentials = generate()
    again = generate(credentials)
    assert again == credentials
    objects = manifests.render("kind", SETTINGS, "learner-01", credentials=credentials)
    values = secret_values(objects)
    for name, keys in GENERATED.items():
        for key in keys:
            assert values[(name, key)] == credentials[name][key]
    assert values[("grafana-admin", "GF_SECURITY_ADMIN_USER")] == "admin"


def test_a_missing_credential_is_generated_and_the_others_kept() -> None:
    kept = generate()
    partial = {"chaos-secret": kept["chaos-secret"]}  # e.g. a Secret a learner deleted
    completed = generate(partial)
    assert completed["chaos-secret"] == kept["chaos-secret"]
    assert completed["postgres-secret"] != kept["postgres-secret"]


def test_postgres_claim_goes_with_its_statefulset() -> None:
    """`down` on the cluster target deletes the StatefulSet: a claim left behind would hold a
    database initialised with the old stack's password, which the next stack does not know."""
    statefulset = manifests.find(manifests.render("cluster", SETTINGS), "StatefulSet", "postgres")
    policy = statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Delete", "whenScaled": "Retain"}
