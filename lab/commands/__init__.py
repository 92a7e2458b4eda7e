"""The subcommands of `ironclad-lab`, one module each (see lab.cli), and the flags several
share, spelled as kubectl and helm spell them: `-n/--namespace`, `--context`, `--kubeconfig`,
`-o/--output json|yaml` (`--json` is `-o json`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.errors import LabError, UsageError
from lab.i18n import LANGUAGES, _, ngettext
from lab.settings import Settings, check_namespace
from lab.targets.spec import NAMES, SPECS, requested_spec

Subparsers = Any  # argparse's _SubParsersAction, which is private
OUTPUTS = ("json", "yaml")  # what -o/--output accepts (without it: text for people)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, except that an indented line of a description or an epilog (an example, a
    table row) is printed as written; other lines are wrapped as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line
            if line.startswith(" ") or not line.strip()
            else super(HelpFormatter, self)._fill_text(line, width, indent)
            for line in text.splitlines()
        )


class LabParser(argparse.ArgumentParser):
    """Every parser of the tree (subparsers are made of the same class): no abbreviated flags
    (`--image` is a whole flag, never a prefix of another), examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def examples(*lines: str) -> str:
    """An epilog of example command lines (`# comment` aligned after each)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


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
    return str(getattr(args, "target", None) or settings.target)


def add_namespace(parser: argparse.ArgumentParser) -> None:
    """`-n/--namespace`, checked as a namespace name while parsing (before anything is applied)."""
    parser.add_argument(
        "-n",
        "--namespace",
        type=namespace_name,
        default=None,
        help="where the lab's objects go (default: $LAB_NAMESPACE, else ironclad-demo)",
    )


def add_language(parser: argparse.ArgumentParser) -> None:
    """`--lang`, one of the languages the lab speaks; lab.cli.main puts it into the settings
    (`Settings.lang`) and speaks it from then on. Without it: $LAB_LANG, else the workspace's,
    else the locale's, else English (lab.settings.learner_language)."""
    parser.add_argument(
        "--lang",
        choices=tuple(LANGUAGES),
        default=None,
        help="the learner's language: "
        + ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
        + " (default: $LAB_LANG, else the workspace's, else your locale's, else en)",
    )


def namespace_name(name: str) -> str:
    """argparse type of `--namespace` (argparse reports ArgumentTypeError as a usage error)."""
    try:
        return check_namespace(name, "--namespace")
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_kubeconfig(
    parser: argparse.ArgumentParser, whose: str, context_default: str = "the current one"
) -> None:
    """`--context` and `--kubeconfig` (as kubectl has them); `whose` says which cluster."""
    parser.add_argument(
        "--context",
        default=None,
        help=f"kubeconfig context of {whose} (default: {context_default})",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="the kubeconfig file to read (default: $KUBECONFIG, else ~/.kube/config)",
    )


def add_output(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`-o/--output json|yaml` and its alias `--json`, into `args.output`."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default=default,
        help=f"print for scripts: {' or '.join(OUTPUTS)} (default: {default or 'text for people'})",
    )
    parser.add_argument(
        "--json", dest="output", action="store_const", const="json", help="the same as -o json"
    )


def emit(data: Any, output: str) -> None:
    """Print `data` (plain dicts, lists, strings, numbers) as `output` (json: one line)."""
    if output == "json":
        print(json.dumps(data))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False), end="")


def refuse_off_target(args: argparse.Namespace, requested: str, only_on: Mapping[str, str]) -> None:
    """UsageError (exit 2) when a flag of `only_on` (`--flag` -> the TargetSpec fact a target
    needs for it, e.g. `loads_image_archive`) was given but the requested target lacks it
    (`auto` counts as lacking it: it may pick either): the flag would be silently ignored."""
    row = requested_spec(requested)
    for flag, fact in only_on.items():
        value = getattr(args, flag.removeprefix("--").replace("-", "_"), None)
        if value is None or value is False or (row is not None and getattr(row, fact)):
            continue
        where = [name for name, other in SPECS.items() if getattr(other, fact)]
        raise UsageError(
            ngettext(
                "{flag} applies to the {targets} target only, and the target is {requested}.",
                "{flag} applies to the {targets} targets only, and the target is {requested}.",
                len(where),
            ).format(flag=flag, targets=", ".join(where), requested=requested),
            _("Add --target {target}, or drop {flag}.").format(target=where[0], flag=flag),
        )
