"""The subcommands of `ironclad-lab`, one module each (see lab.cli)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from lab.settings import TARGETS

Subparsers = Any  # argparse's _SubParsersAction, which is private


def add_target(parser: argparse.ArgumentParser, choices: tuple[str, ...] = TARGETS) -> None:
    """`--target`, defaulting to $LAB_TARGET, else auto."""
    parser.add_argument(
        "--target",
        choices=choices,
        default=os.environ.get("LAB_TARGET", "auto"),
        help="where the lab runs (default: $LAB_TARGET, else auto)",
    )
