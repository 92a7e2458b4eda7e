"""`generate rules|guide|translations [--check]`: rewrite the files the lab generates from its
own code.

`rules`: the Prometheus rule files (both scales) from the SLOs of `lab.slo`; `guide`: the
generated sections of docs/instructor-guide.md (`lab.guide`); `translations`: the translation
catalogs merged with the English they translate, and the translated notebooks generated from
them (`lab.catalogs`; with `--check`, every incomplete translation too). With `--check`
nothing is written:
a file that differs from what would be generated is an error (exit 1), which is how the tests
keep the committed files current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands import Subparsers, examples
from lab.errors import LabError
from lab.settings import Settings


def register(commands: Subparsers) -> None:
    generate = commands.add_parser(
        "generate",
        help="rewrite the generated files: the Prometheus rules, the instructor guide's tables",
        description=__doc__.split("\n\n", 1)[1],
        epilog=examples(
            "ironclad-lab generate rules           # after editing the SLOs in lab/slo.py",
            "ironclad-lab generate guide --check   # exit 1 when the guide is stale",
            "ironclad-lab generate translations    # after editing a notebook or a message",
        ),
    )
    kinds = generate.add_subparsers(dest="generated", required=True, metavar="WHAT")
    rules = kinds.add_parser(
        "rules", help="the Prometheus rule files (both scales) from the SLOs in lab/slo.py"
    )
    rules.add_argument(
        "--rules-dir",
        type=Path,
        default=None,
        help="where the rule files live (default: manifests/monitoring/rules)",
    )
    guide = kinds.add_parser(
        "guide",
        help="docs/instructor-guide.md's timing table, agendas and failure playbook",
    )
    translations = kinds.add_parser(
        "translations",
        help="the .po catalogs (new and changed English merged in) and notebooks/<lang>/",
    )
    for parser in (rules, guide, translations):
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit 1 when a committed file differs from the generated one",
        )
    generate.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch to the generator asked for, in English: what it writes is the English source
    (the guide's playbook quotes the lab's own messages) and its errors are for whoever
    maintains those files, whatever language the lab speaks to learners."""
    from lab import i18n

    i18n.use(i18n.SOURCE_LANGUAGE)
    handlers = {"rules": run_rules, "guide": run_guide, "translations": run_translations}
    return handlers[args.generated](args, settings)


def run_rules(args: argparse.Namespace, settings: Settings) -> int:
    from lab import slo, slo_rules

    rules_dir: Path = args.rules_dir or settings.rules_dir
    if args.check:
        _stale(slo_rules.stale_files(rules_dir), "rules")
        return 0
    for scale in slo.SCALES:
        rule_file = scale.rule_file(rules_dir)
        rule_file.parent.mkdir(parents=True, exist_ok=True)
        rule_file.write_text(slo_rules.render(scale))
        print(f"wrote {rule_file}")
    return 0


def run_guide(args: argparse.Namespace, settings: Settings) -> int:
    from lab import guide

    path = settings.repo_root / guide.GUIDE
    current = path.read_text()
    wanted = guide.render(current, guide.sections(settings.repo_root))
    if args.check:
        _stale([path] if wanted != current else [], "guide")
        return 0
    path.write_text(wanted)
    print(f"wrote {path}")
    return 0


def run_translations(args: argparse.Namespace, settings: Settings) -> int:
    from lab import catalogs

    if args.check:
        found = catalogs.problems(settings.repo_root)
        if found:
            raise LabError(
                f"{len(found)} translation problem(s):\n" + "\n".join(f"  {p}" for p in found),
                "Run `ironclad-lab generate translations`, translate what it lists (fill the "
                "msgstr; remove a `fuzzy` flag once the entry is checked), then run it again.",
            )
        return 0
    for path in catalogs.update(settings.repo_root):
        print(f"wrote {path}")
    return 0


def _stale(paths: list[Path], what: str) -> None:
    """LabError naming every file in `paths` (none: nothing to say)."""
    if paths:
        raise LabError(
            "Out of date: " + ", ".join(str(path) for path in paths) + ".",
            f"Run `ironclad-lab generate {what}` and commit the result.",
        )
