"""`workshop provision|status|teardown`: learner namespaces on a shared cluster (lab.workshop)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands import Subparsers
from lab.settings import Settings

DEFAULT_WORKSHOP = "ironclad"


def register(commands: Subparsers) -> None:
    workshop = commands.add_parser(
        "workshop",
        help="provision, watch and tear down learner namespaces on a shared cluster",
        description="One namespace per learner on a shared cluster: `provision` creates them "
        "(and a kubeconfig each), `status` shows everyone's progress, `teardown` removes "
        "what provision made, by label.",
    )
    actions = workshop.add_subparsers(dest="workshop_action", required=True, metavar="ACTION")
    provision = actions.add_parser("provision", help="create the learners' namespaces")
    provision.add_argument("--learners", type=int, required=True, help="how many learners")
    provision.add_argument("--prefix", default="learner-", help="namespace prefix (learner-)")
    provision.add_argument(
        "--dry-run", action="store_true", help="print the objects as YAML, create nothing"
    )
    provision.add_argument(
        "--out", type=Path, default=Path("build/workshop"), help="where the kubeconfigs go"
    )
    provision.add_argument(
        "--token-expiry", default="8h", help="how long the learners' tokens last (8h, 90m)"
    )
    status = actions.add_parser("status", help="every learner's lessons and recorded runs")
    status.add_argument("--html", type=Path, default=None, help="also write the board here")
    teardown = actions.add_parser("teardown", help="delete what provision made (by label)")
    teardown.add_argument(
        "--timeout", type=float, default=300.0, help="how long to wait for the deletion (s)"
    )
    for parser in (provision, status, teardown):
        parser.add_argument(
            "--workshop",
            default=DEFAULT_WORKSHOP,
            help=f"the workshop's name, its label value (default {DEFAULT_WORKSHOP})",
        )
        parser.add_argument("--context", default=None, help="kubeconfig context (the admin's)")
    workshop.set_defaults(handler=run_workshop)


def run_workshop(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch to the action's handler."""
    actions = {"provision": run_provision, "status": run_status, "teardown": run_teardown}
    return actions[args.workshop_action](args, settings)


def run_provision(args: argparse.Namespace, settings: Settings) -> int:
    from lab.manifests import to_yaml
    from lab.workshop.api import KubeInstructorApi
    from lab.workshop.capacity import capacity_lines
    from lab.workshop.objects import all_objects
    from lab.workshop.provision import make_plan, parse_duration, provision, summary_lines

    seconds = parse_duration(args.token_expiry)
    plan = make_plan(settings, args.learners, args.prefix, args.workshop)
    if args.dry_run:
        print("".join(f"# {line}\n" for line in capacity_lines(plan.footprint, plan.at_rest)))
        print(to_yaml(all_objects(plan)), end="")
        return 0
    done = provision(plan, KubeInstructorApi(args.context), args.out, seconds)
    print("\n".join(summary_lines(done)))
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    from lab.workshop.api import KubeInstructorApi
    from lab.workshop.status import html_page, status, table

    learners = status(KubeInstructorApi(args.context), args.workshop)
    print(table(learners))
    if args.html is not None:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(html_page(learners, args.workshop), encoding="utf-8")
        print(f"HTML board: {args.html}")
    return 0


def run_teardown(args: argparse.Namespace, settings: Settings) -> int:
    from lab.workshop.api import KubeInstructorApi
    from lab.workshop.provision import teardown

    deleted = teardown(KubeInstructorApi(args.context), args.workshop, args.timeout)
    print(
        f"Deleted {len(deleted)} namespaces: {', '.join(deleted)}"
        if deleted
        else f"Nothing to delete: no namespace is labelled for workshop {args.workshop}."
    )
    return 0
