"""`init DIR`: make a learner workspace (lab.workspace): the course, where your work lives."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands import Subparsers, examples
from lab.i18n import _
from lab.settings import Settings


def register(commands: Subparsers) -> None:
    init = commands.add_parser(
        "init",
        help="make a learner workspace: the notebooks, manifests and docs, where your work lives",
        description="Copy the course (notebooks and their solutions, manifests, docs, the "
        "backend's build context) into DIR, a new or empty directory outside any checkout (or "
        "in its build/, which git ignores). "
        "Run the lab from inside it: it finds the workspace by searching upwards, and "
        "everything you save or a run writes (build/) stays there.",
        epilog=examples(
            "ironclad-lab init ~/ironclad && cd ~/ironclad",
            "ironclad-lab kernelspec && jupyter lab notebooks/   # learn",
            "ironclad-lab run --target local                     # or run it all headless",
        ),
    )
    init.add_argument("directory", type=Path, metavar="DIR", help="the workspace to create")
    init.add_argument(
        "--exist-ok",
        action="store_true",
        help="DIR is a workspace already: use it as it is (your work in it is kept)",
    )
    init.set_defaults(handler=run_init, needs_root=False)


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    from lab.workspace import COURSE, init

    made = init(args.directory, exist_ok=args.exist_ok)
    folders = ", ".join(f"{p}/" for p in (*COURSE, "backend"))
    print(_("Workspace ready: {workspace} ({folders}).").format(workspace=made, folders=folders))
    print(_("Next:"))
    print(f"  cd {made}")
    print("  ironclad-lab kernelspec    # " + _("once per environment"))
    print("  jupyter lab notebooks/     # " + _("learn; or the whole lab headless:"))
    print("  ironclad-lab run --target local")
    return 0
