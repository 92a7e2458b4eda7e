"""`ironclad-lab` (also `python -m lab`): one argparse tree, one module per subcommand.

Each module named in COMMANDS has `register(subparsers)`, which adds its parser and sets
`handler` (a function of the parsed arguments and the settings returning the exit code) and,
for a command that works anywhere, `needs_root=False` (the others run in a checkout or a
workspace). Adding a subcommand is writing such a module and naming it here.

Exit codes, the same for every subcommand: 0 done; 1 a `LabError` (one message and the next
step, no traceback); 2 a usage error (argparse's own, or a `UsageError`: a flag where it does
not apply, a value out of range); 128+N stopped by signal N (`up`, `run`). Handlers import what they
need when they run, so `ironclad-lab --help` stays fast (and works in a plain install, without
the `lab` extra every subcommand needs: `lab.extras`).

What a command prints for people, and its errors, are in the learner's language (lab.i18n);
`--help` is English, and so is the `-o json|yaml` output scripts read.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lab import i18n
from lab.commands import LabParser, examples
from lab.errors import LabError, UsageError
from lab.extras import installed_version, require
from lab.i18n import _
from lab.settings import (
    ENVIRONMENT,
    WORKSPACE_MARKER,
    Settings,
    get_settings,
    is_lab_root,
)

COMMANDS = (
    "lab.commands.stack",
    "lab.commands.render",
    "lab.commands.run",
    "lab.commands.images",
    "lab.commands.reset",
    "lab.commands.workshop",
    "lab.commands.generate",
    "lab.commands.kernelspec",
    "lab.commands.init",
)
SHELLS = ("bash", "zsh", "tcsh")  # what shtab completes
EXIT_ERROR = 1  # a LabError, whichever command raised it
EXIT_USAGE = 2  # what argparse exits with for a usage error; a UsageError too
LOG_HANDLER = "ironclad-lab-cli"
HELP_WIDTH = 96  # the epilog's lines, as wide as argparse's own on a usual terminal
# The extra of the package every subcommand runs on (it includes the backend's: the local target
# runs backend processes from this environment).
COMMANDS_EXTRA = "lab"


EXAMPLES = """\
examples:
  ironclad-lab init ~/ironclad && cd ~/ironclad   # a workspace for your notebooks
  ironclad-lab up --target local                   # the stack, until Ctrl-C
  ironclad-lab run --notebooks 01,02               # headless, with a report
  ironclad-lab status -o json                      # what runs, for a script
  ironclad-lab COMMAND --help                      # each command's flags and examples
"""


def environment_epilog() -> str:
    """The LAB_* variables, from their one list (lab.settings.ENVIRONMENT)."""
    width = max(len(name) for name in ENVIRONMENT)
    lines = [
        textwrap.fill(
            meaning,
            HELP_WIDTH,
            initial_indent=f"  {name.ljust(width)}  ",
            subsequent_indent=" " * (width + 4),
        )
        for name, meaning in ENVIRONMENT.items()
    ]
    return "environment (a flag, where one exists, wins):\n" + "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    cli = LabParser(
        prog="ironclad-lab",
        description="Ironclad Lab: bring the stack up, run the notebooks, render the manifests.",
        epilog=f"{EXAMPLES}\n{environment_epilog()}",
    )
    cli.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    cli.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(commands)
    completion = commands.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh or tcsh)",
        description="Tab completion of every command, flag and choice, for your shell "
        "(generated from this very parser tree by shtab).",
        epilog=examples(
            'eval "$(ironclad-lab completion bash)"   # in ~/.bashrc',
            "ironclad-lab completion zsh > ~/.zfunc/_ironclad-lab   # fpath+=~/.zfunc",
        ),
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=print_completion, needs_root=False)
    return cli


def print_completion(args: argparse.Namespace, settings: Settings) -> int:
    """`completion SHELL`: the script shtab generates from the whole tree."""
    import shtab

    print(shtab.complete(parser(), shell=args.shell))
    return 0


def configure_logging(quiet: bool = False) -> None:
    """The lab's log lines on stderr, as plain messages (replacing an earlier call's handler)."""
    logger = logging.getLogger("lab")
    for handler in [h for h in logger.handlers if h.name == LOG_HANDLER]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.name = LOG_HANDLER
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Parse `argv`, run the subcommand, return its exit code (see the module docstring)."""
    try:  # argparse checks values (a lesson number, a namespace) before the rest: in the
        # settings' language (LAB_LANG, the workspace's, the locale's) too
        i18n.use((settings or get_settings()).lang)
    except (LabError, ImportError):  # a bad LAB_LANG (reported below); no Babel (plain install)
        i18n.use(i18n.SOURCE_LANGUAGE)
    args = parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        require(COMMANDS_EXTRA, args.command)
        settings = settings or get_settings()
        if getattr(args, "lang", None):  # `--lang` (run, init) wins over LAB_LANG and the rest
            settings = replace(settings, lang=args.lang)
        i18n.use(settings.lang, settings.repo_root)
        needs_root = getattr(args, "needs_root", True)
        if needs_root and not is_lab_root(settings.repo_root):  # before anything is made
            raise LabError(
                _(
                    "{root} is not an Ironclad Lab workspace or checkout (no {marker}, nor a "
                    "pyproject.toml with manifests/ there; searched upwards from {cwd} and from "
                    "the installed package, unless LAB_REPO_ROOT names it)."
                ).format(root=settings.repo_root, marker=WORKSPACE_MARKER, cwd=Path.cwd()),
                _(
                    "Make a workspace and work inside it: ironclad-lab init ~/ironclad && cd "
                    "~/ironclad (or cd into your checkout). Nothing was created."
                ),
            )
        return int(args.handler(args, settings))
    except UsageError as exc:
        message = _("ironclad-lab {command}: error: {message}")
        print(message.format(command=args.command, message=exc), file=sys.stderr)
        return EXIT_USAGE
    except LabError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return EXIT_ERROR
