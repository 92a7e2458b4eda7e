"""`render`: print, as multi-document YAML, what `up` would apply (on kind, `up` adds one
annotation: the ID of the image it built, so a rebuilt image rolls out)."""

from __future__ import annotations

import argparse

from lab.commands import (
    Subparsers,
    add_namespace,
    add_output,
    emit,
    examples,
    refuse_off_target,
)
from lab.settings import Settings
from lab.targets.spec import SPECS

# The targets that apply manifests (local runs processes).
RENDER_TARGETS = tuple(name for name, row in SPECS.items() if row.overlay is not None)


def register(commands: Subparsers) -> None:
    render = commands.add_parser(
        "render",
        help="print what `up` would apply (multi-document YAML)",
        epilog=examples(
            "ironclad-lab render | kubectl apply --dry-run=client -f -",
            "ironclad-lab render --target cluster -n learner-07 --image REGISTRY/backend:TAG",
            "ironclad-lab render -o json | jq '.items[].kind'",
        ),
    )
    render.add_argument(
        "--target",
        choices=RENDER_TARGETS,
        default="kind",
        help="default: kind (with the Namespace and metrics-server); cluster has nothing "
        "cluster-scoped",
    )
    add_namespace(render)
    render.add_argument(
        "--image",
        default=None,
        metavar="REF",
        help="cluster: the backend image (default: $LAB_IMAGE, as `up` uses it)",
    )
    add_output(render, default="yaml")
    render.set_defaults(handler=run_render)


def run_render(args: argparse.Namespace, settings: Settings) -> int:
    from lab.manifests import render, to_yaml

    refuse_off_target(args, args.target, {"--image": "pulls_image"})  # kind builds its own
    target = SPECS[args.target]
    assert target.overlay is not None  # RENDER_TARGETS: the rows that have one
    image = args.image or (settings.registry_image if target.pulls_image else None)
    objects = render(target.overlay, settings, args.namespace, image)
    if args.output == "json":  # as `kubectl get -o json` prints several objects
        emit({"apiVersion": "v1", "kind": "List", "items": objects}, "json")
    else:
        print(to_yaml(objects), end="")
    return 0
