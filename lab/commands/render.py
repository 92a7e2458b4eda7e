"""`render`: print, as multi-document YAML, what `up` would apply."""

from __future__ import annotations

import argparse

from lab.commands import Subparsers, add_namespace
from lab.settings import Settings

RENDER_TARGETS = ("kind", "cluster")  # the targets that apply manifests (local runs processes)


def register(commands: Subparsers) -> None:
    render = commands.add_parser("render", help="print what `up` would apply (multi-document YAML)")
    render.add_argument(
        "--target",
        choices=RENDER_TARGETS,
        default="kind",
        help="default: kind (with the Namespace and metrics-server); cluster has nothing "
        "cluster-scoped",
    )
    add_namespace(render)
    render.set_defaults(handler=run_render)


def run_render(args: argparse.Namespace, settings: Settings) -> int:
    from lab.manifests import render, to_yaml

    print(to_yaml(render(args.target, settings, args.namespace)), end="")
    return 0
