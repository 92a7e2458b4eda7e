"""`init DIR`: make a learner workspace (lab.workspace): the course, where your work lives."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands import Subparsers, add_language, examples
from lab.i18n import _
from lab.settings import Settings, workspace_language


def register(commands: Subparsers) -> None:
    init = commands.add_parser(
        "init",
        help="make a learner workspace: the notebooks, manifests and docs, where your work lives",
        description="Copy the course (notebooks and their solutions, manifests, docs, the "
        "backend's build context) into DIR, a new or empty directory outside any checkout (or "
        "in its build/, which git ignores). "
        "Run the lab from inside it: it finds the workspace by searching upwards, and "
        "everything you save or a run writes (build/) stays there. The workspace records the "
        "language (--lang): the lab speaks it there, and its notebooks are in notebooks/ "
        "(English) or notebooks/LANG/.",
        epilog=examples(
            "ironclad-lab init ~/ironclad && cd ~/ironclad",
            "ironclad-lab init ~/ironclad --lang es   # the course in Spanish: notebooks/es/",
            "ironclad-lab kernelspec && jupyter lab notebooks/   # learn",
            "ironclad-lab run --target local                     # or run it all headless",
        ),
    )
    init.add_argument("directory", type=Path, metavar="DIR", help="the workspace to create")
    init.add_argument(
        "--exist-ok",
        action="store_true",
        help="DIR is a workspace already: use it as it is (your work in it is kept; --lang "
        "changes the language it records)",
    )
    add_language(init)
    init.set_defaults(handler=run_init, needs_root=False)


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    from lab.i18n import LANGUAGES, notebooks_dir
    from lab.workspace import COURSE, init, record_language

    made = init(args.directory, exist_ok=args.exist_ok, language=settings.lang)
    if args.lang and workspace_language(made) != args.lang:  # --exist-ok on another language
        record_language(made, args.lang)
    language = workspace_language(made) or settings.lang  # one made before languages: none
    notebooks = f"{notebooks_dir(made, language).relative_to(made)}/"
    folders = ", ".join(f"{p}/" for p in (*COURSE, "backend"))
    print(_("Workspace ready: {workspace} ({folders}).").format(workspace=made, folders=folders))
    print(
        _("Language: {name} ({code}); its notebooks: {notebooks}").format(
            name=LANGUAGES[language], code=language, notebooks=notebooks
        )
    )
    print(_("Next:"))
    print(f"  cd {made}")
    print("  ironclad-lab kernelspec    # " + _("once per environment"))
    print(f"  jupyter lab {notebooks:<15}# " + _("learn; or the whole lab headless:"))
    print("  ironclad-lab run --target local")
    return 0
