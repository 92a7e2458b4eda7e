"""lab.targets: endpoints JSON, target choice, the local Prometheus config and kind versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lab.errors import LabError, TargetUnavailableError
from lab.settings import Settings
from lab.targets import Endpoints, choose, make_target
from lab.targets.kind import kind_binary, parse_kind_version
from lab.targets.local import (
    JOB,
    LocalTarget,
    file_sd_groups,
    render_prometheus_config,
    write_grafana_provisioning,
)

ENDPOINTS = Endpoints(target="local", backend="http://127.0.0.1:1",
                      backends=["http://127.0.0.1:1", "http://127.0.0.1:2"],
                      prometheus="http://127.0.0.1:3", grafana=None, chaos_token="t")


def test_endpoints_json_has_the_design_keys_and_round_trips() -> None:
    data = json.loads(ENDPOINTS.to_json())
    assert list(data) == ["target", "backend", "backends", "prometheus", "grafana",
                          "chaos_token"]
    assert "\n" not in ENDPOINTS.to_json()
    assert Endpoints.from_dict({**data, "pid": 1, "namespace": "x"}) == ENDPOINTS


def test_incomplete_endpoints_say_how_to_recover() -> None:
    with pytest.raises(LabError, match="missing 'prometheus'") as info:
        Endpoints.from_dict({"target": "local", "backend": "u", "backends": [],
                             "chaos_token": "t"})
    assert "lab.shutdown()" in info.value.next_step


@pytest.fixture
def path_without_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def fake_docker(directory: Path, exit_code: int) -> None:
    """A stand-in `docker` executable (only its exit code matters to `choose`)."""
    script = directory / "docker"
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)


def test_local_is_chosen_without_asking_docker(path_without_docker: Path) -> None:
    assert choose("local").name == "local"


def test_auto_falls_back_to_local_and_says_why(path_without_docker: Path) -> None:
    choice = choose("auto")
    assert choice.name == "local"
    assert choice.reason == "target=local (auto): docker is not installed, so no kind cluster"


def test_kind_without_a_docker_daemon_says_what_to_do(path_without_docker: Path) -> None:
    fake_docker(path_without_docker, exit_code=1)
    with pytest.raises(TargetUnavailableError) as info:
        choose("kind")
    assert str(info.value) == ("Cannot use the kind target: Docker is not running.\n"
                               "→ Start Docker, or use --target local.")


def test_auto_picks_kind_when_docker_answers(path_without_docker: Path) -> None:
    fake_docker(path_without_docker, exit_code=0)
    assert choose("auto").name == "kind"


def test_unknown_target_is_refused() -> None:
    with pytest.raises(LabError, match="Unknown target"):
        choose("k3d")


def test_prometheus_config_points_rules_and_file_sd_at_absolute_paths(tmp_path: Path) -> None:
    template = tmp_path / "local" / "prometheus.yml"
    template.parent.mkdir()
    template.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "5s"},
        "rule_files": ["../rules/lab/*.yml"],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": []}]},
                           {"job_name": "prometheus", "static_configs": [{"targets": ["x"]}]}],
    }))
    targets = tmp_path / "targets.json"
    config = render_prometheus_config(template, targets)
    assert config["rule_files"] == [str(tmp_path / "rules" / "lab" / "*.yml")]
    backend, other = config["scrape_configs"]
    assert backend == {"job_name": JOB, "file_sd_configs": [{"files": [str(targets)]}]}
    assert other["static_configs"] == [{"targets": ["x"]}]
    assert config["global"] == {"scrape_interval": "5s"}


def test_prometheus_template_without_the_backend_job_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "prometheus.yml"
    template.write_text("scrape_configs: [{job_name: other}]\n")
    with pytest.raises(LabError, match=JOB):
        render_prometheus_config(template, tmp_path / "t.json")


def test_repository_template_renders(tmp_path: Path) -> None:
    template = Path(__file__).resolve().parents[3] / "manifests/monitoring/local/prometheus.yml"
    config = render_prometheus_config(template, tmp_path / "t.json")
    assert config["rule_files"], "the local Prometheus must load the lab-scale rules"
    assert all(Path(rule).is_file() for rule in config["rule_files"])
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    assert job["file_sd_configs"][0]["files"] == [str(tmp_path / "t.json")]


def test_file_sd_has_one_labelled_group_per_replica() -> None:
    assert file_sd_groups([4001, 4002]) == [
        {"targets": ["127.0.0.1:4001"], "labels": {"pod": "backend-0"}},
        {"targets": ["127.0.0.1:4002"], "labels": {"pod": "backend-1"}},
    ]


@pytest.mark.parametrize(("text", "version"), [
    ("kind v0.27.0 go1.23.6 linux/amd64", (0, 27, 0)),
    ("kind v0.17.0 go1.19.2 linux/amd64", (0, 17, 0)),
    ("garbage", None),
])
def test_kind_version_is_parsed(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_kind_version(text) == version


def fake_kind(directory: Path, version: str) -> Path:
    """A stand-in `kind` executable that only answers `kind version`."""
    script = directory / "kind"
    script.write_text(f"#!/bin/sh\necho 'kind {version} go1.23.6 linux/amd64'\n")
    script.chmod(0o755)
    return script


def test_kind_from_path_is_used_when_recent_enough(path_without_docker: Path) -> None:
    script = fake_kind(path_without_docker, "v0.27.0")
    assert kind_binary(Settings(repo_root=path_without_docker)) == str(script)


def test_replicas_are_refused_on_kind() -> None:
    with pytest.raises(LabError, match="HorizontalPodAutoscaler"):
        make_target("kind", Settings(repo_root=Path.cwd()), replicas=2)


def test_local_target_gets_the_requested_replicas() -> None:
    target = make_target("local", Settings(repo_root=Path.cwd(), replicas=3), replicas=5)
    assert isinstance(target, LocalTarget)
    assert target.replicas == 5


def test_grafana_provisioning_points_at_local_prometheus_and_repo_dashboards(
        tmp_path: Path) -> None:
    manifests = Path(__file__).resolve().parents[3] / "manifests"
    write_grafana_provisioning(manifests, tmp_path, "http://127.0.0.1:9999")
    datasources = yaml.safe_load((tmp_path / "datasources" / "lab.yaml").read_text())
    assert [d["url"] for d in datasources["datasources"]] == ["http://127.0.0.1:9999"]
    dashboards = yaml.safe_load((tmp_path / "dashboards" / "lab.yaml").read_text())
    (path,) = [p["options"]["path"] for p in dashboards["providers"]]
    assert list(Path(path).glob("*.json")), "the provider must see the repository dashboards"
