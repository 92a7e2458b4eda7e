"""`ironclad-lab` (also `python -m lab`): one argparse tree, one module per subcommand.

Each module named in COMMANDS has `register(subparsers)`, which adds its parser and sets
`handler` (a function of the parsed arguments and the settings returning the exit code).
Adding a subcommand is writing such a module and naming it here. Handlers import what they
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

from lab.errors import LabError
from lab.extras import require
from lab.settings import Settings, get_settings, is_checkout

COMMANDS = (
    "lab.commands.stack",
    "lab.commands.render",
    "lab.commands.run",
    "lab.commands.images",
    "lab.commands.reset",
    "lab.commands.workshop",
)
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
    """Parse `argv`, run the subcommand, return its exit code (errors: one message, code 1)."""
    args = parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        require(COMMANDS_EXTRA, args.command)
        settings = settings or get_settings()
        if not is_checkout(settings.repo_root):  # before anything (build/, a state file) is made
            raise LabError(
                f"{settings.repo_root} is not an Ironclad Lab checkout (no pyproject.toml with "
                f"manifests/ there; searched upwards from the installed package and from "
                f"{Path.cwd()}, unless LAB_REPO_ROOT names it).",
                "cd into your checkout (git clone it first), or set LAB_REPO_ROOT to it. "
                "Nothing was created.",
            )
        return int(args.handler(args, settings))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
