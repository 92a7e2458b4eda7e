"""`reset --to N`: bring the running stack to the state lesson N expects (see lab.reset)."""

from __future__ import annotations

import argparse

from lab.commands import Subparsers, add_target, examples
from lab.errors import LabError
from lab.i18n import _
from lab.lessons import LESSONS, Lesson, expected_parts, lesson
from lab.settings import Settings


def register(commands: Subparsers) -> None:
    reset = commands.add_parser(
        "reset",
        help="bring the running lab to the state lesson N expects: chaos off, replicas ready, "
        "(kind) the overlay re-applied and later lessons' objects removed",
        epilog=examples("ironclad-lab reset --to 5   # before lesson 05, whatever 04 left"),
    )
    numbers = ", ".join(str(row.number) for row in LESSONS)
    reset.add_argument(
        "--to", type=lesson_row, required=True, metavar="N", help=f"lesson number ({numbers})"
    )
    add_target(reset)
    reset.set_defaults(handler=run_reset)


def run_reset(args: argparse.Namespace, settings: Settings) -> int:
    from lab import stack
    from lab.errors import LabNotRunningError, UsageError
    from lab.reset import fix_backends, reset_cluster
    from lab.stack import read_state
    from lab.targets import satisfied_by, spec

    row: Lesson = args.to
    state = read_state(settings.state_file)
    if state is None:
        raise LabNotRunningError(
            _("No lab is running (state file {state_file}).").format(
                state_file=settings.state_file
            ),
            _("Start one (ironclad-lab up), then reset: ironclad-lab reset --to {lesson}.").format(
                lesson=row.number
            ),
        )
    running = state.endpoints.target
    if not satisfied_by(args.target, running):
        raise UsageError(
            _("The running lab is on target={running}, not {requested}.").format(
                running=running, requested=args.target
            ),
            _("Drop --target, or stop it and start the other: ironclad-lab down."),
        )
    timeout = settings.restart_delay + settings.ready_timeout
    overlay = spec(running).overlay
    reapply = None
    if overlay is not None:  # the recorded identity: its context, namespace and image
        from lab.k8s import NamespaceClient
        from lab.manifests import render
        from lab.targets.kube import stack_credentials

        identity = state.kubernetes()
        print(
            _("resetting context {context}, namespace {namespace} …").format(
                context=identity.context, namespace=identity.namespace
            )
        )
        cluster = NamespaceClient.connect(identity)
        credentials = stack_credentials(cluster)  # the first call: a cluster that does not
        # answer (or an older lab) is refused here, before anything changes
        objects = render(
            overlay,
            settings,
            namespace=identity.namespace,
            image=identity.image,
            credentials=credentials,  # the stack keeps its own
        )
        reapply = (cluster, objects, identity.image)
    after = stack.build(settings, expected_parts(row.number), settings.rollout_timeout + 120)
    built = after.parts
    if built:
        done = [
            _("built: {parts} (what lesson {lesson} expects on entry)").format(
                parts=", ".join(built), lesson=row.id
            )
        ]
    else:
        done = [_("built: nothing (what lesson {lesson} expects on entry)").format(lesson=row.id)]
    if reapply is not None:
        cluster, objects, image = reapply
        if "backend" in built:  # kind stamps its image's ID: kept, or every pod rolls out
            from lab.targets.kind import with_live_image_stamp

            objects = with_live_image_stamp(cluster, objects, image)
        done += reset_cluster(cluster, objects, row.number, settings.rollout_timeout, built)
    if "backend" in built:
        done += fix_backends(after.endpoints, timeout)
    for line in done:
        print(line)
    print(
        _("ready for lesson {notebook} (target={target}).").format(
            notebook=row.notebook, target=running
        )
    )
    return 0


def lesson_row(text: str) -> Lesson:
    """argparse type of `--to`: the lessons table's row (a lesson that does not exist is a
    usage error, exit 2, before anything is read or touched)."""
    try:
        return lesson(int(text))
    except (ValueError, LabError) as exc:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a lesson: use one of {lessons}").format(
                text=text, lessons=", ".join(str(r.number) for r in LESSONS)
            )
        ) from exc
