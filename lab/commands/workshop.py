"""`workshop provision|status|teardown`: learner namespaces on a shared cluster (lab.workshop)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lab.commands import Subparsers, add_kubeconfig, add_output, emit, examples
from lab.errors import LabError
from lab.i18n import _, ngettext
from lab.settings import Settings

if TYPE_CHECKING:  # the Kubernetes client: not for `--help`
    from lab.workshop.api import KubeInstructorApi

DEFAULT_OUT = Path("build/workshop")
YES = ("y", "yes", "s", "sí", "si")  # what `confirm` takes for yes, in the languages the lab speaks


def register(commands: Subparsers) -> None:
    workshop = commands.add_parser(
        "workshop",
        help="provision, watch and tear down learner namespaces on a shared cluster",
        description="One namespace per learner on a shared cluster: `provision` creates them "
        "(and a kubeconfig each), `status` shows everyone's progress, `teardown` removes "
        "what provision made, by the workshop's id. The workshop's name and id are recorded "
        "in OUT/workshop.json: status and teardown with the same --out find it.",
        epilog=examples(
            "ironclad-lab workshop provision --learners 30 --dry-run | less",
            "ironclad-lab workshop provision --learners 30 --kubeconfig admin.kubeconfig",
            "ironclad-lab workshop status --html board.html   # -o json for a script",
            "ironclad-lab workshop teardown --dry-run && ironclad-lab workshop teardown --yes",
        ),
    )
    actions = workshop.add_subparsers(dest="workshop_action", required=True, metavar="ACTION")
    provision = actions.add_parser("provision", help="create the learners' namespaces")
    provision.add_argument("--learners", type=int, required=True, help="how many learners")
    provision.add_argument("--prefix", default="learner-", help="namespace prefix (learner-)")
    provision.add_argument(
        "--dry-run", action="store_true", help="print the objects as YAML, create nothing"
    )
    provision.add_argument(
        "--token-expiry", default="8h", help="how long the learners' tokens last (8h, 90m)"
    )
    status = actions.add_parser("status", help="every learner's lessons and recorded runs")
    status.add_argument("--html", type=Path, default=None, help="also write the board here")
    add_output(status)
    teardown = actions.add_parser("teardown", help="delete what provision made (by its id)")
    teardown.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
    )
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    teardown.add_argument(
        "--timeout", type=float, default=300.0, help="how long to wait for the deletion (s)"
    )
    for parser in (provision, status, teardown):
        parser.add_argument(
            "--workshop",
            default=None,
            help="the workshop's name (default: the one OUT/workshop.json records; provision "
            "without a record generates one that no other run makes, and prints it)",
        )
        parser.add_argument(
            "--out",
            type=Path,
            default=DEFAULT_OUT,
            help=f"the workshop's directory: its record and the kubeconfigs ({DEFAULT_OUT})",
        )
        add_kubeconfig(parser, "the workshop cluster's admin")
    for parser in (status, teardown):
        parser.add_argument(
            "--id", default=None, help="the workshop's id (default: from OUT/workshop.json)"
        )
    workshop.set_defaults(handler=run_workshop)


def run_workshop(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch to the action's handler."""
    actions = {"provision": run_provision, "status": run_status, "teardown": run_teardown}
    return actions[args.workshop_action](args, settings)


def run_provision(args: argparse.Namespace, settings: Settings) -> int:
    from lab.manifests import to_yaml
    from lab.workshop.capacity import capacity_lines
    from lab.workshop.objects import all_objects
    from lab.workshop.provision import (
        identity_to_provision,
        make_plan,
        parse_duration,
        provision,
        summary_lines,
    )

    seconds = parse_duration(args.token_expiry)
    record, resumed = identity_to_provision(args.workshop, args.out)
    plan = make_plan(settings, args.learners, args.prefix, record.workshop, record.uid)
    if args.dry_run:
        print("".join(f"# {line}\n" for line in capacity_lines(plan.footprint, plan.at_rest)))
        print(
            "# "
            + _("workshop {workshop} (id {id}; a dry run records nothing)").format(
                workshop=record.workshop, id=record.uid
            )
        )
        print(to_yaml(all_objects(plan)), end="")
        return 0
    done = provision(plan, instructor_api(args), args.out, seconds)
    print("\n".join(summary_lines(record, resumed, done)))
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    from lab.workshop.provision import identity_to_find
    from lab.workshop.status import html_page, status, table

    workshop, uid = identity_to_find(args.workshop, args.id, args.out)
    learners = status(instructor_api(args), workshop, uid)
    if args.html is not None:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(html_page(learners, workshop), encoding="utf-8")
    if args.output:
        board = {"workshop": workshop, "id": uid, "learners": [x.to_dict() for x in learners]}
        emit(board, args.output)
        return 0
    print(table(learners))
    if args.html is not None:
        print(_("HTML board: {path}").format(path=args.html))
    return 0


def run_teardown(args: argparse.Namespace, settings: Settings) -> int:
    from lab.workshop.provision import Record, identity_to_find, owned, teardown

    workshop, uid = identity_to_find(args.workshop, args.id, args.out)
    api = instructor_api(args)
    target = owned(api, workshop, uid)
    print(_("Workshop {workshop} (id {id}) owns:").format(workshop=target.workshop, id=target.uid))
    print("\n".join(f"  {line}" for line in target.lines()))
    if args.dry_run:
        print(_("Dry run: nothing was deleted."))
        return 0
    if not args.yes:
        count = len(target.lines())
        confirm(
            ngettext(
                "Delete this {count} object and everything in the namespaces?",
                "Delete these {count} objects and everything in the namespaces?",
                count,
            ).format(count=count)
        )
    teardown(api, target, args.timeout)
    recorded = Record.read(args.out)
    if recorded is not None and recorded.uid == target.uid:
        Record.path(args.out).unlink()
    namespaces = len(target.namespaces)
    print(
        ngettext(
            "Deleted workshop {workshop}: {count} namespace and its admission policy.",
            "Deleted workshop {workshop}: {count} namespaces and its admission policy.",
            namespaces,
        ).format(workshop=target.workshop, count=namespaces)
    )
    return 0


def instructor_api(args: argparse.Namespace) -> KubeInstructorApi:
    """The admin's client, from --kubeconfig and --context (default: as kubectl finds them)."""
    from lab.workshop.api import KubeInstructorApi

    return KubeInstructorApi(args.context, args.kubeconfig)


def confirm(question: str) -> None:
    """Ask on the terminal; LabError unless the answer is yes (or nobody can answer)."""
    if not sys.stdin.isatty():
        raise LabError(
            _(
                "Teardown asks for confirmation and there is no terminal to ask on: nothing was "
                "deleted."
            ),
            _("Check the list above (or --dry-run), then run it again with --yes."),
        )
    answer = input(_("{question} [y/N] ").format(question=question)).strip().lower()
    if answer not in YES:
        raise LabError(
            _("Teardown cancelled: nothing was deleted."), _("Run it again and answer y.")
        )
