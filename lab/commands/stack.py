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
from lab.i18n import N_, _
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


# The labels of what `up` and `status` print for people, translated where shown (`field`);
# the endpoints' own names (backend, prometheus, grafana, pid, namespace, pods) stay as they are.
TARGET = N_("target")
REPLICA = N_("replica")
CHAOS_TOKEN = N_("chaos token")
CONTEXT = N_("context")
IMAGE = N_("image")
GRAFANA_LOGIN = N_("grafana login")
LABEL_WIDTH = 11  # "prometheus:": the values start in one column (a longer label: one space)


def field(label: str, value: object) -> str:
    """One `label: value` line of `up`'s and `status`'s output, `label` as given."""
    return f"{label + ':':<{LABEL_WIDTH}} {value}"


def not_built(part: str) -> str:
    """What `up` prints for an endpoint whose part no lesson has built yet."""
    return _("- (not built yet: lesson {lesson} builds it)").format(lesson=part_lesson(part).id)


def describe(endpoints: Endpoints) -> str:
    """The human-readable endpoint list printed by `up` without -o."""
    lines = [
        field(_(TARGET), endpoints.target),
        field("backend", endpoints.backend or not_built("backend")),
        *(field("  " + _(REPLICA), url) for url in endpoints.backends),
        field("prometheus", endpoints.prometheus or not_built("monitoring")),
        field("grafana", endpoints.grafana or "-"),
        field(_(CHAOS_TOKEN), endpoints.chaos_token),
    ]
    return "\n".join(lines)


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    from lab import stack

    row = requested_spec(target(args, settings))
    if args.replicas is not None and row is not None and row.has_cluster:
        raise UsageError(
            _(
                "--replicas applies to the local target only: on {target} the "
                "HorizontalPodAutoscaler sets the number of backend pods."
            ).format(target=row.name),
            _("Drop --replicas (or change the HPA in manifests/base)."),
        )

    def announce(endpoints: Endpoints) -> None:
        if args.output:
            emit(endpoints.to_dict(), args.output)
        else:
            print(describe(endpoints))
            print(_("Press Ctrl-C to stop and clean up."))
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
        print(
            _("No lab is running (no live `up` in {state_file}).").format(
                state_file=settings.state_file
            )
        )
    elif stopped.state is not None:
        state, identity = stopped.state, stopped.state.identity
        target, pid = state.endpoints.target, state.pid
        if identity is None:
            print(_("Stopped the {target} lab (pid {pid}).").format(target=target, pid=pid))
        else:
            print(
                _(
                    "Stopped the {target} lab (pid {pid}, context {context}, namespace "
                    "{namespace})."
                ).format(
                    target=target, pid=pid, context=identity.context, namespace=identity.namespace
                )
            )
    else:
        print(
            _("No `up` was running, but a killed one (SIGKILL, a crash) had left these; stopped:")
        )
        print("".join(f"  {line}\n" for line in stopped.leftovers), end="")
    return 0


def pods_line(identity: Identity) -> str:
    """How many of the lab's pods are ready and Grafana's admin login (the stack's own),
    through the recorded identity; LabError (one line: unreachable, TLS, expired token,
    forbidden) when the cluster does not answer."""
    from lab.k8s import NamespaceClient

    cluster = NamespaceClient.connect(identity)
    pods = cluster.pods()
    ready = sum(1 for pod in pods if pod.ready)
    waiting = sorted({pod.detail for pod in pods if not pod.ready and pod.detail})
    counts = {"ready": ready, "total": len(pods), "waiting": ", ".join(waiting)}
    if waiting:
        shown = _("{ready}/{total} ready (waiting: {waiting})").format(**counts)
    else:
        shown = _("{ready}/{total} ready").format(**counts)
    lines = [field("pods", shown)]
    from lab.targets.kube import live_credentials  # the stack's own, generated when it started

    grafana = live_credentials(cluster).get("grafana-admin", {})
    if grafana:
        login = _("{user} / {password} (anonymous viewers need none)").format(
            user=grafana["GF_SECURITY_ADMIN_USER"], password=grafana["GF_SECURITY_ADMIN_PASSWORD"]
        )
        lines.append(field(_(GRAFANA_LOGIN), login))
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
            print(
                _("No lab is running (state file {state_file}).").format(
                    state_file=settings.state_file
                )
            )
        left = live_leftovers(stack.pid_file(settings.state_file))
        if left:
            group = _("{name} (process group {pgid})")
            names = ", ".join(group.format(name=g.name, pgid=g.pgid) for g in left)
            print(
                _("A killed `up` left these running: {names}. Stop them: ironclad-lab down").format(
                    names=names
                ),
                file=sys.stderr,
            )
        return 1
    if args.output:
        emit(state.to_dict(), args.output)
        return 0
    print(field("pid", state.pid))
    print(field("namespace", state.namespace))
    print(describe(state.endpoints))
    if state.identity is not None:
        identity = state.identity
        print(field(_(CONTEXT), f"{identity.context} ({identity.kubeconfig})"))
        print(field(_(IMAGE), identity.image))
        print(pods_line(identity))  # a cluster that does not answer: one line, exit 1
    return 0
