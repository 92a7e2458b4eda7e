"""`images`: every image of the kind path, pinned (lab.images), as one offline archive
(lab.image_archive), loaded into a kind cluster's nodes on request (lab.targets.kind_nodes)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from lab.commands import Subparsers, add_output, emit, examples
from lab.i18n import _, ngettext
from lab.settings import Settings


def register(commands: Subparsers) -> None:
    images = commands.add_parser(
        "images",
        help="list the kind path's images; save them as one archive, or load one",
        description="Without an action: every image the kind path runs, how it is pinned and "
        "why. `save` pulls them (where a registry is reachable) into one archive with a "
        "checksum manifest; `load` verifies an archive and loads it into Docker and kind.",
        epilog=examples(
            "ironclad-lab images -o json                      # the list, for a script",
            "ironclad-lab images save --out ironclad-images.tar",
            "ironclad-lab images load --archive ironclad-images.tar --cluster ironclad",
        ),
    )
    add_output(images)
    actions = images.add_subparsers(dest="images_action", metavar="ACTION")
    save = actions.add_parser(
        "save",
        help="pull every image, build the backend's (from the lock), write one archive",
    )
    save.add_argument("--out", type=Path, required=True, help="the archive to write (.tar)")
    load = actions.add_parser("load", help="verify an archive, load it into Docker (and kind)")
    load.add_argument("--archive", type=Path, required=True, help="an archive from `save`")
    load.add_argument(
        "--cluster", default=None, metavar="NAME", help="also load it into this kind cluster"
    )
    images.set_defaults(handler=run_images)


def run_images(args: argparse.Namespace, settings: Settings) -> int:
    from lab import image_archive, images

    result: Any
    if args.images_action == "load":
        result = image_archive.load_archive(args.archive)
        if args.cluster is not None:
            from lab.targets.kind_nodes import load_into_kind

            load_into_kind(result.images, args.cluster)
            result = replace(result, cluster=args.cluster)
    elif args.images_action == "save":
        build = lambda: image_archive.build_backend(settings)  # noqa: E731
        result = image_archive.save(args.out, images.inventory(settings), build=build)
    else:
        result = images.inventory(settings)
    if args.output:
        emit(_jsonable(result), args.output)
    elif isinstance(result, list):
        pinned, used = _("  pinned by {pin}: {why}"), _("  used by {where}")
        for image in result:
            print(image.ref)
            print(pinned.format(pin=image.pin, why=image.why))
            print("".join(used.format(where=where) + "\n" for where in image.used_by), end="")
    else:
        count = len(result.images)
        print(
            ngettext(
                "{archive} (sha256 {sha256}): {count} image",
                "{archive} (sha256 {sha256}): {count} images",
                count,
            ).format(archive=result.archive, sha256=result.sha256, count=count)
        )
    return 0


def _jsonable(result: Any) -> Any:
    if isinstance(result, list):
        return [{**asdict(image), "pullable": image.pullable} for image in result]
    return json.loads(json.dumps(asdict(result), default=str))
