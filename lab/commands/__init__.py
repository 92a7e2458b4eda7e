"""The subcommands of `ironclad-lab`, one module each (see lab.cli)."""

from __future__ import annotations

import argparse
from typing import Any

from lab.errors import LabError
from lab.settings import Settings, check_namespace
from lab.targets.spec import NAMES

Subparsers = Any  # argparse's _SubParsersAction, which is private


def add_target(parser: argparse.ArgumentParser, choices: tuple[str, ...] = NAMES) -> None:
    """`--target`; without it, `target()` falls back to the settings (LAB_TARGET, else auto)."""
    parser.add_argument(
        "--target",
        choices=choices,
        default=None,
        help="where the lab runs (default: $LAB_TARGET, else auto)",
    )


def target(args: argparse.Namespace, settings: Settings) -> str:
    """The target asked for on the command line, else the one the settings name."""
    return str(args.target or settings.target)


def add_namespace(parser: argparse.ArgumentParser) -> None:
    """`--namespace`, checked as a namespace name while parsing (before anything is applied)."""
    parser.add_argument(
        "--namespace",
        type=namespace_name,
        default=None,
        help="where the lab's objects go (default: $LAB_NAMESPACE, else ironclad-demo)",
    )


def namespace_name(name: str) -> str:
    """argparse type of `--namespace` (argparse reports ArgumentTypeError as a usage error)."""
    try:
        return check_namespace(name, "--namespace")
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
