"""Which of the package's extras are installed, read from its own metadata (stdlib only).

A plain `pip install ironclad-lab` brings the console script and nothing else, so `--help` and
`--version` work anywhere; every subcommand runs on the `lab` extra, and `require` turns a
missing one into a single line naming it (instead of a ModuleNotFoundError deep in a traceback).
Requirement lines are read with a regular expression because `packaging` is not installed in
such a plain install either.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution, requires, version

from lab.errors import LabError
from lab.i18n import _, ngettext

DISTRIBUTION = "ironclad-lab"
# `name[extras] (bounds); extra == "lab"`: the name, the extras it asks for, the extra it is in.
REQUIREMENT = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?")
IN_EXTRA = re.compile(r"""extra\s*==\s*["'](?P<extra>[^"']+)["']""")
SHOWN = 4  # the missing distributions named in the error (the rest counted)


class ExtraMissingError(LabError):
    """A subcommand needs an extra of the package that is not installed."""


def installed_version() -> str:
    """This package's version, from its metadata (a checkout never installed has none)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def requirements(extra: str, lines: list[str]) -> set[str]:
    """Names of the distributions `extra` needs, following the package's own extras
    (`lab` lists `ironclad-lab[backend]`)."""
    names: set[str] = set()
    for line in lines:
        marker = IN_EXTRA.search(line.partition(";")[2])
        match = REQUIREMENT.match(line)
        if marker is None or marker["extra"] != extra or match is None:
            continue
        if _normal(match["name"]) == DISTRIBUTION:
            for inner in (match["extras"] or "").split(","):
                if inner.strip():
                    names |= requirements(inner.strip(), lines)
        else:
            names.add(match["name"])
    return names


def missing(extra: str) -> list[str]:
    """The distributions of `extra` that are not installed (none when the package itself is not
    installed: a checkout put on sys.path has no metadata to read)."""
    try:
        lines = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        return []
    absent = []
    for name in sorted(requirements(extra, lines)):
        try:
            distribution(name)
        except PackageNotFoundError:
            absent.append(name)
    return absent


def require(extra: str, command: str) -> None:
    """Raise ExtraMissingError (one line, naming the extra) unless `extra` is installed."""
    if absent := missing(extra):
        names = ", ".join(absent[:SHOWN])
        if len(absent) > SHOWN:
            more = len(absent) - SHOWN
            names = ngettext("{names} and {more} more", "{names} and {more} more", more).format(
                names=names, more=more
            )
        raise ExtraMissingError(
            _(
                "`ironclad-lab {command}` needs the `{extra}` extra, which is not installed "
                "({names} missing): pip install '{distribution}[{extra}]'"
            ).format(command=command, extra=extra, names=names, distribution=DISTRIBUTION)
        )


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
