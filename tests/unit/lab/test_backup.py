"""lab.backup's Jobs: made from the backup CronJob's jobTemplate, they keep its hardened pod
(the lint that holds the stack holds them too), change only the command, and carry the label
the lesson removes them by."""

from __future__ import annotations

import functools

import pytest

from lab import backup, manifests
from lab.lint import lint
from lab.settings import DEFAULT_NAMESPACE, get_settings

SETTINGS = get_settings()


@functools.cache
def backup_cronjob() -> manifests.Obj:
    return manifests.find(manifests.render("backup", SETTINGS), "CronJob", backup.CRONJOB)


@pytest.mark.parametrize("action", ["backup", "disaster", "restore"])
def test_each_step_is_the_templates_pod_with_its_own_command(action: str) -> None:
    cronjob = backup_cronjob()
    job = backup.job_manifest(cronjob, action, backup.COMMANDS.get(action))
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    pod = job["spec"]["template"]
    assert job["kind"] == "Job"
    assert job["metadata"]["name"].startswith(f"postgres-{action}-")
    assert pod["spec"]["securityContext"] == template["spec"]["securityContext"]
    [container], [original] = pod["spec"]["containers"], template["spec"]["containers"]
    assert {k: v for k, v in container.items() if k != "args"} == {
        k: v for k, v in original.items() if k != "args"
    }
    expected = original["args"] if action == "backup" else [backup.COMMANDS[action]]
    assert container["args"] == expected
    assert pod["metadata"]["labels"][backup.JOB_LABEL] == action
    assert job["metadata"]["labels"][backup.JOB_LABEL] == action
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"] == template  # not changed


def test_the_jobs_pass_the_stacks_lint() -> None:
    """Pod Security restricted, resources, probes where due: a Job breaks none of it (its
    selector is the API server's to generate)."""
    cronjob = backup_cronjob()
    jobs = [
        {**backup.job_manifest(cronjob, a, backup.COMMANDS.get(a)), "metadata": {
            **backup.job_manifest(cronjob, a, None)["metadata"], "namespace": DEFAULT_NAMESPACE
        }}
        for a in ("backup", "restore")
    ]  # fmt: skip
    objects = [*manifests.render("kind", SETTINGS), *manifests.render("backup", SETTINGS), *jobs]
    assert lint(objects, DEFAULT_NAMESPACE) == []


def test_the_backup_render_generates_no_secret_and_stays_in_the_namespace() -> None:
    """Applying the add-on must never replace the stack's generated Secrets."""
    objects = manifests.render("backup", SETTINGS, namespace="learner-07")
    assert {o["kind"] for o in objects} == {"PersistentVolumeClaim", "CronJob", "NetworkPolicy"}
    assert {o["metadata"]["namespace"] for o in objects} == {"learner-07"}
