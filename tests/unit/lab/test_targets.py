"""lab.targets: endpoints JSON, target choice, the local Prometheus config and kind versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from lab.errors import LabError, TargetUnavailableError
from lab.net import free_port
from lab.settings import Settings
from lab.targets import Endpoints, choose, make_target
from lab.targets.kind import (
    IMAGE_ID_ANNOTATION,
    kind_binary,
    kind_download_url,
    load_image,
    parse_kind_version,
    path_kind_usable,
    stamp_image,
    stopped_nodes,
    verify_sha256,
)
from lab.targets.local import (
    JOB,
    LocalTarget,
    file_sd_groups,
    render_prometheus_config,
    write_grafana_provisioning,
)
from lab.targets.spec import SPECS

ENDPOINTS = Endpoints(
    target="local",
    backend="http://127.0.0.1:1",
    backends=["http://127.0.0.1:1", "http://127.0.0.1:2"],
    prometheus="http://127.0.0.1:3",
    grafana=None,
    chaos_token="t",
)


def test_endpoints_json_has_the_design_keys_and_round_trips() -> None:
    data = json.loads(ENDPOINTS.to_json())
    assert list(data) == [
        *("target", "backend", "backends", "prometheus", "grafana", "chaos_token"),
        "service",  # the backend's real Service from this machine (kind's NodePort), else ""
    ]
    assert "\n" not in ENDPOINTS.to_json()
    assert Endpoints.from_dict({**data, "pid": 1, "namespace": "x"}) == ENDPOINTS


def test_a_state_without_the_service_url_reads_as_no_service() -> None:
    """A state file an older lab wrote has no `service`: no Service URL, not an error."""
    data = {k: v for k, v in ENDPOINTS.to_dict().items() if k != "service"}
    assert Endpoints.from_dict(data).service == ""


def test_incomplete_endpoints_say_how_to_recover() -> None:
    with pytest.raises(LabError, match="missing 'prometheus'") as info:
        Endpoints.from_dict({"target": "local", "backend": "u", "backends": [], "chaos_token": "t"})
    assert "lab.shutdown()" in info.value.next_step


@pytest.fixture
def path_without_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


SETTINGS = Settings(repo_root=Path.cwd())


def fake_docker(directory: Path, exit_code: int) -> None:
    """A stand-in `docker` executable (only its exit code matters to `choose`)."""
    script = directory / "docker"
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)


def test_local_is_chosen_without_asking_docker(path_without_docker: Path) -> None:
    assert choose("local", SETTINGS).name == "local"


def test_auto_falls_back_to_local_and_says_why(path_without_docker: Path) -> None:
    choice = choose("auto", SETTINGS)
    assert choice.name == "local"
    assert choice.reason == "target=local (auto): docker is not installed, so no kind cluster"


def test_kind_without_a_docker_daemon_says_what_to_do(path_without_docker: Path) -> None:
    fake_docker(path_without_docker, exit_code=1)
    with pytest.raises(TargetUnavailableError) as info:
        choose("kind", SETTINGS)
    assert str(info.value) == (
        "Cannot use the kind target: Docker is not running.\n→ Start Docker, or use --target local."
    )


@pytest.mark.usefixtures("spanish")
def test_a_target_unavailable_says_so_in_spanish(path_without_docker: Path) -> None:
    """The learner's language for the refusal and its fix; the reason `auto` gives keeps its
    `target=NAME ` start (lab up compares it) in Spanish too."""
    fake_docker(path_without_docker, exit_code=1)
    with pytest.raises(TargetUnavailableError) as info:
        choose("kind", SETTINGS)
    assert str(info.value) == (
        "No se puede usar el objetivo kind: Docker no está en marcha.\n"
        "→ Inicia Docker, o usa --target local."
    )
    assert choose("auto", SETTINGS).reason == (
        "target=local (auto): Docker no está en marcha, así que no hay clúster kind"
    )


def test_auto_picks_kind_when_docker_and_kind_answer(path_without_docker: Path) -> None:
    fake_docker(path_without_docker, exit_code=0)
    kind = fake_kind(path_without_docker, Settings.kind_version)
    choice = choose("auto", SETTINGS)
    assert choice.name == "kind"
    assert choice.reason == f"target=kind (auto): Docker answers and kind is at {kind}"


def test_auto_falls_back_to_local_when_kind_cannot_be_had(
    path_without_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker answers, no kind on PATH, nothing cached, and the download fails (a closed
    local port stands in for an unreachable release server): local, with the reason."""
    fake_docker(path_without_docker, exit_code=0)
    monkeypatch.setattr("lab.targets.kind.CACHE", tmp_path / "cache")
    unreachable = Settings(
        repo_root=tmp_path, kind_download_url=f"http://127.0.0.1:{free_port()}/kind"
    )
    choice = choose("auto", unreachable)
    assert choice.name == "local"
    assert choice.reason.startswith("target=local (auto): Docker answers but kind does not: ")


def test_unknown_target_is_refused() -> None:
    with pytest.raises(LabError, match="is not a target"):
        choose("k3d", SETTINGS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_row_of_the_target_table_makes_its_target(name: str) -> None:
    """A new row of lab.targets.spec.SPECS needs its class in make_target (CONTRIBUTING.md)."""
    assert make_target(name, SETTINGS).name == name


def test_prometheus_config_points_rules_and_file_sd_at_absolute_paths(tmp_path: Path) -> None:
    template = tmp_path / "local" / "prometheus.yml"
    template.parent.mkdir()
    template.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "5s"},
                "rule_files": ["../rules/lab/*.yml"],
                "scrape_configs": [
                    {"job_name": JOB, "static_configs": [{"targets": []}]},
                    {"job_name": "prometheus", "static_configs": [{"targets": ["x"]}]},
                ],
            }
        )
    )
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


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("kind v0.27.0 go1.23.6 linux/amd64", (0, 27, 0)),
        ("kind v0.17.0 go1.19.2 linux/amd64", (0, 17, 0)),
        ("garbage", None),
    ],
)
def test_kind_version_is_parsed(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_kind_version(text) == version


def fake_kind(directory: Path, version: str) -> Path:
    """A stand-in `kind` executable that only answers `kind version`."""
    script = directory / "kind"
    script.write_text(f"#!/bin/sh\necho 'kind {version} go1.23.6 linux/amd64'\n")
    script.chmod(0o755)
    return script


def test_kind_from_path_is_used_when_recent_enough(path_without_docker: Path) -> None:
    script = fake_kind(path_without_docker, Settings.kind_version)
    assert kind_binary(Settings(repo_root=path_without_docker)) == str(script)


@pytest.mark.parametrize(
    ("found", "usable"),
    [
        ((0, 27, 0), True),
        ((0, 33, 0), True),  # the pinned release, or a later one
        ((0, 26, 1), False),
        ((0, 17, 0), False),
        (None, False),  # older: its images may not work
    ],
)
def test_kind_on_path_must_be_at_least_the_pinned_release(
    found: tuple[int, int, int] | None, usable: bool
) -> None:
    assert path_kind_usable(found, "v0.27.0") is usable


def test_an_older_kind_on_path_is_replaced_by_the_pinned_download(
    path_without_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KIND_DOWNLOAD_URL (Settings.kind_download_url) points the download at a local HTTP
    server here, so no network is used; the binary is checked against the served sha256."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from lab.targets import kind as kind_module

    fake_kind(path_without_docker, "v0.17.0")
    served = tmp_path / "served"
    served.mkdir()
    (served / "kind").write_text("#!/bin/sh\necho 'kind v0.27.0 go1.23.6 linux/amd64'\n")
    digest = hashlib.sha256((served / "kind").read_bytes()).hexdigest()
    (served / "kind.sha256sum").write_text(f"{digest}  kind-linux-amd64\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(kind_module, "CACHE", tmp_path / "cache")
    url = f"http://127.0.0.1:{server.server_port}/kind"
    try:
        binary = kind_binary(
            Settings(repo_root=tmp_path, kind_version="v0.27.0", kind_download_url=url)
        )
    finally:
        server.shutdown()
        server.server_close()
    assert binary == str(tmp_path / "cache" / "kind-v0.27.0")
    assert Path(binary).read_text().startswith("#!/bin/sh")
    assert Path(binary).stat().st_mode & 0o111, "the downloaded kind must be executable"


def test_kind_download_matches_this_machine() -> None:
    base = "https://github.com/kubernetes-sigs/kind/releases/download/v0.27.0/"
    assert kind_download_url("v0.27.0", "Linux", "x86_64") == base + "kind-linux-amd64"
    assert kind_download_url("v0.27.0", "Darwin", "arm64") == base + "kind-darwin-arm64"
    assert kind_download_url("v0.27.0", "Linux", "aarch64") == base + "kind-linux-arm64"
    with pytest.raises(TargetUnavailableError, match="riscv64"):
        kind_download_url("v0.27.0", "Linux", "riscv64")


def recording_tool(directory: Path, name: str, body: str) -> Path:
    """A stand-in executable that appends its argv to calls.log, then runs `body` (sh)."""
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{directory}/calls.log"\n{body}\n')
    script.chmod(0o755)
    return script


def test_image_load_falls_back_to_a_single_platform_archive(path_without_docker: Path) -> None:
    """kind issue #3795: with Docker's containerd image store `kind load docker-image` fails;
    the lab then saves only the image's platform and loads that archive."""
    kind = recording_tool(
        path_without_docker,
        "kind",
        """case "$2" in
  docker-image) echo 'ctr: content digest sha256:00: not found' >&2; exit 1;;
  image-archive) test -s "$3" || exit 3;;
esac""",
    )
    recording_tool(
        path_without_docker,
        "docker",
        """case "$2" in
  inspect) echo linux/arm64;;
  save) echo archive > "$6";;
esac""",
    )
    load_image(str(kind), "ironclad-backend:lab", "ironclad")
    calls = (path_without_docker / "calls.log").read_text().splitlines()
    assert [c.split(" -o ")[0] for c in calls[:3]] == [
        "kind load docker-image ironclad-backend:lab --name ironclad",
        "docker image inspect --format {{.Os}}/{{.Architecture}} ironclad-backend:lab",
        "docker image save --platform linux/arm64",
    ]
    assert calls[3].startswith("kind load image-archive /")
    assert calls[3].endswith("image.tar --name ironclad")


def test_image_load_failing_both_ways_says_what_to_do(path_without_docker: Path) -> None:
    kind = recording_tool(path_without_docker, "kind", "echo 'kind says no' >&2; exit 1")
    recording_tool(path_without_docker, "docker", "echo 'unknown flag: --platform' >&2; exit 125")
    with pytest.raises(LabError) as info:
        load_image(str(kind), "ironclad-backend:lab", "ironclad")
    assert "kind says no" in info.value.problem
    assert "--platform" in info.value.problem
    assert "#3795" in info.value.next_step


def test_stopped_nodes_of_a_reused_cluster_are_named(path_without_docker: Path) -> None:
    kind = recording_tool(
        path_without_docker, "kind", "printf 'ironclad-control-plane\\nironclad-worker\\n'"
    )
    recording_tool(
        path_without_docker,
        "docker",
        "printf '/ironclad-control-plane true\\n/ironclad-worker false\\n'",
    )
    assert stopped_nodes(str(kind), "ironclad") == ["ironclad-worker"]
    calls = (path_without_docker / "calls.log").read_text().splitlines()
    assert calls == [
        "kind get nodes --name ironclad",
        "docker inspect --format {{.Name}} {{.State.Running}} "
        "ironclad-control-plane ironclad-worker",
    ]


def test_pod_templates_running_the_lab_image_carry_its_id() -> None:
    objects = [
        {
            "kind": "Deployment",
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "b"}},
                    "spec": {"containers": [{"image": "ironclad-backend:lab"}]},
                }
            },
        },
        {
            "kind": "StatefulSet",
            "spec": {"template": {"spec": {"containers": [{"image": "postgres:17.6"}]}}},
        },
        {"kind": "ConfigMap", "data": {}},
    ]
    stamped = stamp_image(objects, "ironclad-backend:lab", "sha256:abc")
    assert stamped[0]["spec"]["template"]["metadata"] == {
        "labels": {"app": "b"},
        "annotations": {IMAGE_ID_ANNOTATION: "sha256:abc"},
    }
    assert "metadata" not in stamped[1]["spec"]["template"]
    assert stamped[2] == {"kind": "ConfigMap", "data": {}}


def test_replicas_are_refused_on_kind() -> None:
    with pytest.raises(LabError, match="HorizontalPodAutoscaler"):
        make_target("kind", Settings(repo_root=Path.cwd()), replicas=2)


def test_local_target_gets_the_requested_replicas() -> None:
    target = make_target("local", Settings(repo_root=Path.cwd(), replicas=3), replicas=5)
    assert isinstance(target, LocalTarget)
    assert target.replicas == 5


def test_grafana_provisioning_points_at_local_prometheus_and_repo_dashboards(
    tmp_path: Path,
) -> None:
    manifests = Path(__file__).resolve().parents[3] / "manifests"
    write_grafana_provisioning(manifests, tmp_path, "http://127.0.0.1:9999")
    datasources = yaml.safe_load((tmp_path / "datasources" / "lab.yaml").read_text())
    assert [d["url"] for d in datasources["datasources"]] == ["http://127.0.0.1:9999"]
    dashboards = yaml.safe_load((tmp_path / "dashboards" / "lab.yaml").read_text())
    (path,) = [p["options"]["path"] for p in dashboards["providers"]]
    assert list(Path(path).glob("*.json")), "the provider must see the repository dashboards"


def test_a_download_whose_sha256_differs_is_deleted_and_refused(tmp_path: Path) -> None:
    """The published sum is served by a local HTTP server; a tampered binary never stays."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "kind.sha256sum").write_text(f"{'0' * 64}  kind-linux-amd64\n")
    binary = tmp_path / "kind-v0.33.0"
    binary.write_text("#!/bin/sh\necho tampered\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TargetUnavailableError, match="sha256"):
            verify_sha256(binary, f"http://127.0.0.1:{server.server_port}/kind.sha256sum")
    finally:
        server.shutdown()
        server.server_close()
    assert not binary.exists()


def docker_on_cgroup(directory: Path, version: str) -> None:
    """A stand-in `docker` whose daemon answers and reports cgroup `version`."""
    script = directory / "docker"
    script.write_text(
        f'#!/bin/sh\ncase "$*" in *CgroupVersion*) echo {version};; *) echo 29.0.0;; esac\n'
    )
    script.chmod(0o755)


def test_kind_on_a_cgroup_v1_host_says_so_plainly(path_without_docker: Path) -> None:
    docker_on_cgroup(path_without_docker, "1")
    fake_kind(path_without_docker, Settings.kind_version)
    with pytest.raises(TargetUnavailableError) as info:
        choose("kind", SETTINGS)
    assert "Docker runs on cgroup v1" in info.value.problem
    assert "Kubernetes >= 1.35" in info.value.problem
    assert "cgroup v2" in info.value.next_step
    auto = choose("auto", SETTINGS)
    assert auto.name == "local"
    assert "cgroup v1" in auto.reason
    docker_on_cgroup(path_without_docker, "2")
    assert choose("kind", SETTINGS).name == "kind"
