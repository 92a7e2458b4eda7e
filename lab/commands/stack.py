"""`up`, `down`, `status`: the stack `ironclad-lab up` runs until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.commands import (
    Subparsers,
    add_kubeconfig,
    add_namespace,
    add_output,
    add_target,
    emit,
    examples,
    refuse_off_target,
    target,
)
from lab.commands.reset import lesson_row
from lab.errors import UsageError
from lab.lessons import PARTS, expected_parts, part_lesson
from lab.settings import Settings
from lab.targets.spec import requested_spec

if TYPE_CHECKING:  # lab.stack and lab.targets load psutil and tqdm: `--help` must not
    from lab.identity import Identity
    from lab.targets import Endpoints


def register(commands: Subparsers) -> None:
    up = commands.add_parser(
        "up",
        help="bring the stack up and keep it up until Ctrl-C/SIGTERM (exit 0; 128+signal when "
        "stopped before ready; 1 when it cannot start, e.g. another `up` holds the state file)",
        epilog=examples(
            "ironclad-lab up --target local                # PostgreSQL, 3 backends, Prometheus",
            "ironclad-lab up --target local -o json        # one JSON line once ready (scripts)",
            "ironclad-lab up --target kind --archive ironclad-images.tar   # nothing is pulled",
            "ironclad-lab up --target cluster -n learner-07 --image REGISTRY/backend:TAG \\",
            "    --kubeconfig learner-07.kubeconfig --context workshop",
        ),
    )
    add_target(up)
    up.add_argument(
        "--replicas", type=int, default=None, help="backend replicas (local; default 3)"
    )
    add_output(up)
    up.add_argument(
        "--lesson",
        type=lesson_row,
        default=None,
        metavar="N",
        help="build only what lesson N expects on entry (the parts of the lessons before it; "
        "lab/lessons.py); default: the whole stack",
    )
    up.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="stop (and clean up) when this process is gone (lab.connect() passes its kernel's)",
    )
    add_namespace(up)
    add_kubeconfig(up, "the cluster target", "$LAB_KUBE_CONTEXT, else the current one")
    up.add_argument(
        "--image",
        default=None,
        metavar="REF",
        help="cluster: the backend image it runs, pushed to a registry the cluster pulls from "
        "(default: $LAB_IMAGE; none is published from this repository)",
    )
    up.add_argument(
        "--archive",
        type=Path,
        default=None,
        metavar="FILE",
        help="kind: load this `images save` archive first, so nothing is pulled",
    )
    up.add_argument(
        "--keep",
        action="store_true",
        help="cluster: leave the applied objects in the namespace on exit",
    )
    down = commands.add_parser(
        "down",
        help="stop the running `up` (it removes what it started)",
        epilog=examples("ironclad-lab down", "ironclad-lab down --state-file build/other.json"),
    )
    status = commands.add_parser(
        "status",
        help="what runs: target, pid, endpoints and (kind, cluster) its context, namespace and "
        "pods (exit 1: none runs, or its cluster does not answer)",
        epilog=examples(
            "ironclad-lab status",
            "ironclad-lab status -o json | jq -r .prometheus   # null when none runs (exit 1)",
        ),
    )
    add_output(status)
    for parser in (up, down, status):
        parser.add_argument(
            "--state-file",
            type=Path,
            default=None,
            help="where the running lab is recorded (default: $LAB_STATE_FILE, else "
            "build/lab-state.json)",
        )
    up.set_defaults(handler=run_up)
    down.set_defaults(handler=run_down)
    status.set_defaults(handler=run_status)


# The flags of `up` (and `run`) that one kind of target reads: given for another (or for auto,
# which never picks the cluster target and may not pick kind), they are a usage error.
ONLY_ON = {
    "--context": "shared",
    "--kubeconfig": "shared",
    "--image": "pulls_image",
    "--keep": "shared",
    "--archive": "loads_image_archive",
}


def _settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with what the command line overrides (flags only `up` has count when set)."""
    refuse_off_target(args, target(args, settings), ONLY_ON)
    kubeconfig = getattr(args, "kubeconfig", None)
    overrides: dict[str, Any] = {
        "state_file_override": args.state_file.resolve() if args.state_file else None,
        "namespace": getattr(args, "namespace", None),
        "kube_context": getattr(args, "context", None),
        "kubeconfig": str(kubeconfig.resolve()) if kubeconfig else None,
        "registry_image": getattr(args, "image", None),
        "keep": getattr(args, "keep", False) or None,
        "images_archive": images_archive(args, settings),
    }
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def images_archive(args: argparse.Namespace, settings: Settings) -> Path | None:
    """`--archive FILE` (resolved), refused unless the target is kind: only kind loads it."""
    refuse_off_target(args, target(args, settings), {"--archive": ONLY_ON["--archive"]})
    archive: Path | None = getattr(args, "archive", None)
    return archive.resolve() if archive else None


def not_built(part: str) -> str:
    """What `up` prints for an endpoint whose part no lesson has built yet."""
    return f"- (not built yet: lesson {part_lesson(part).id} builds it)"


def describe(endpoints: Endpoints) -> str:
    """The human-readable endpoint list printed by `up` without -o."""
    lines = [
        f"target:     {endpoints.target}",
        f"backend:    {endpoints.backend or not_built('backend')}",
        *(f"  replica:  {url}" for url in endpoints.backends),
        f"prometheus: {endpoints.prometheus or not_built('monitoring')}",
        f"grafana:    {endpoints.grafana or '-'}",
        f"chaos token: {endpoints.chaos_token}",
    ]
    return "\n".join(lines)


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    from lab import stack

    row = requested_spec(target(args, settings))
    if args.replicas is not None and row is not None and row.has_cluster:
        raise UsageError(
            f"--replicas applies to the local target only: on {row.name} the "
            "HorizontalPodAutoscaler sets the number of backend pods.",
            "Drop --replicas (or change the HPA in manifests/base).",
        )

    def announce(endpoints: Endpoints) -> None:
        if args.output:
            emit(endpoints.to_dict(), args.output)
        else:
            print(f"{describe(endpoints)}\nPress Ctrl-C to stop and clean up.")
        sys.stdout.flush()

    parts = PARTS if args.lesson is None else expected_parts(args.lesson.number)
    return stack.serve(
        _settings(args, settings),
        target(args, settings),
        announce,
        args.replicas,
        args.parent_pid,
        parts,
    )


def run_down(args: argparse.Namespace, settings: Settings) -> int:
    from lab import stack

    settings = _settings(args, settings)
    stopped = stack.stop(settings, timeout=settings.rollout_timeout + 60)
    if stopped is None:
        print(f"No lab is running (no live `up` in {settings.state_file}).")
    elif stopped.state is not None:
        state = stopped.state
        where = f", {where_of(state.identity)}" if state.identity else ""
        print(f"Stopped the {state.endpoints.target} lab (pid {state.pid}{where}).")
    else:
        print("No `up` was running, but a killed one (SIGKILL, a crash) had left these; stopped:")
        print("".join(f"  {line}\n" for line in stopped.leftovers), end="")
    return 0


def where_of(identity: Identity) -> str:
    """Where a kind/cluster lab lives, for one line of output."""
    return f"context {identity.context}, namespace {identity.namespace}"


def pods_line(identity: Identity) -> str:
    """How many of the lab's pods are ready and Grafana's admin login (the stack's own),
    through the recorded identity; LabError (one line: unreachable, TLS, expired token,
    forbidden) when the cluster does not answer."""
    from lab.k8s import NamespaceClient

    cluster = NamespaceClient.connect(identity)
    pods = cluster.pods()
    ready = sum(1 for pod in pods if pod.ready)
    waiting = sorted({pod.detail for pod in pods if not pod.ready and pod.detail})
    detail = f" (waiting: {', '.join(waiting)})" if waiting else ""
    lines = [f"pods:       {ready}/{len(pods)} ready{detail}"]
    from lab.targets.kube import live_credentials  # the stack's own, generated when it started

    grafana = live_credentials(cluster).get("grafana-admin", {})
    if grafana:
        user, password = grafana["GF_SECURITY_ADMIN_USER"], grafana["GF_SECURITY_ADMIN_PASSWORD"]
        lines.append(f"grafana login: {user} / {password} (anonymous viewers need none)")
    return "\n".join(lines)


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    from lab import stack
    from lab.procs import live_leftovers

    settings = _settings(args, settings)
    state = stack.read_state(settings.state_file)
    if state is None:
        if args.output:
            emit(None, args.output)
        else:
            print(f"No lab is running (state file {settings.state_file}).")
        left = live_leftovers(stack.pid_file(settings.state_file))
        if left:
            names = ", ".join(f"{g.name} (process group {g.pgid})" for g in left)
            print(
                f"A killed `up` left these running: {names}. Stop them: ironclad-lab down",
                file=sys.stderr,
            )
        return 1
    if args.output:
        emit(state.to_dict(), args.output)
        return 0
    print(f"pid:        {state.pid}\nnamespace:  {state.namespace}\n{describe(state.endpoints)}")
    if state.identity is not None:
        identity = state.identity
        print(
            f"context:    {identity.context} ({identity.kubeconfig})\nimage:      {identity.image}"
        )
        print(pods_line(identity))  # a cluster that does not answer: one line, exit 1
    return 0
