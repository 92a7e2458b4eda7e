"""`kernelspec`: install the lab's `python3` kernel spec into this environment (lab.kernelspec)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands import Subparsers, examples
from lab.i18n import _
from lab.settings import Settings


def register(commands: Subparsers) -> None:
    kernelspec = commands.add_parser(
        "kernelspec",
        help="install the lab's python3 kernel spec (it loads %%%%cluster at start-up)",
        description="Install the `python3` kernel spec of this environment as the lab's: the "
        "same kernel, started with the %%cluster magic loaded, so a notebook's first cell may "
        "be a %%cluster cell. Once per environment (`nox -s jupyter` does it for you).",
        epilog=examples("ironclad-lab kernelspec && jupyter lab"),
    )
    kernelspec.add_argument(
        "--prefix",
        type=Path,
        default=None,
        help="install under PREFIX/share/jupyter/kernels (default: this environment, sys.prefix)",
    )
    kernelspec.set_defaults(handler=run_kernelspec, needs_root=False)


def run_kernelspec(args: argparse.Namespace, settings: Settings) -> int:
    from lab.contract import KERNEL
    from lab.kernelspec import install

    print(
        _("installed the {kernel!r} kernel spec in {path}").format(
            kernel=KERNEL, path=install(args.prefix)
        )
    )
    return 0
