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
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lab.errors import LabError, UsageError
from lab.extras import require
from lab.settings import Settings, get_settings, is_checkout

COMMANDS = (
    "lab.commands.stack",
    "lab.commands.render",
    "lab.commands.run",
    "lab.commands.images",
    "lab.commands.reset",
    "lab.commands.workshop",
    "lab.commands.generate",
    "lab.commands.kernelspec",
)
EXIT_ERROR = 1  # a LabError, whichever command raised it
EXIT_USAGE = 2  # what argparse exits with for a usage error; a UsageError too
LOG_HANDLER = "ironclad-lab-cli"
# The extra of the package every subcommand runs on (it includes the backend's: the local target
# runs backend processes from this environment).
COMMANDS_EXTRA = "lab"


def _version() -> str:
    try:
        return version("ironclad-lab")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    cli = argparse.ArgumentParser(
        prog="ironclad-lab",
        description="Ironclad Lab: bring the stack up, run the notebooks, render the manifests.",
    )
    cli.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    cli.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(commands)
    return cli


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
    args = parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        require(COMMANDS_EXTRA, args.command)
        settings = settings or get_settings()
        needs_root = getattr(args, "needs_root", True)
        if needs_root and not is_checkout(settings.repo_root):  # before anything is made
            raise LabError(
                f"{settings.repo_root} is not an Ironclad Lab checkout (no pyproject.toml with "
                f"manifests/ there; searched upwards from the installed package and from "
                f"{Path.cwd()}, unless LAB_REPO_ROOT names it).",
                "cd into your checkout (git clone it first), or set LAB_REPO_ROOT to it. "
                "Nothing was created.",
            )
        return int(args.handler(args, settings))
    except UsageError as exc:
        print(f"ironclad-lab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
