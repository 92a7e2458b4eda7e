"""`run`: execute the notebooks headless against one stack and write build/lab-report/."""

from __future__ import annotations

import argparse
import atexit
import gc
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.commands import Subparsers, add_language, add_namespace, add_target, examples, target
from lab.commands.stack import images_archive
from lab.errors import LabError, UsageError
from lab.i18n import _
from lab.runner.lanes import DEFAULT_LANES, MAX_LANES
from lab.settings import Settings

if TYPE_CHECKING:
    from lab.identity import Identity


def register(commands: Subparsers) -> None:
    run = commands.add_parser(
        "run",
        help="run the notebooks headless and write the report",
        description="Execute the notebooks headless against one stack; exit code 0 only when "
        "every selected notebook passed.",
        epilog=examples(
            "ironclad-lab run                                # every notebook, target auto",
            "ironclad-lab run --target local --notebooks 01,02 --lanes 1",
            "ironclad-lab run --solutions                    # the exercises' solutions",
            "ironclad-lab run --target kind --archive ironclad-images.tar",
            "ironclad-lab run --target local -n learner-07    # the stack's namespace",
            "ironclad-lab run --lang es                      # the Spanish notebooks",
        ),
    )
    add_target(run)
    add_namespace(run)
    add_language(run)
    run.add_argument(
        "--notebooks",
        default=None,
        metavar="03,06",
        help="comma-separated notebook numbers or names (default: all)",
    )
    run.add_argument(
        "--notebooks-dir",
        type=Path,
        default=None,
        help="where the NN-name.ipynb notebooks are (default: notebooks/ in English, "
        "notebooks/LANG/ in another --lang)",
    )
    run.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where the executed notebooks and the report go (default: build/lab-report/)",
    )
    run.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        help="per-cell time budget in s (default: 300 local, 900 kind)",
    )
    run.add_argument(
        "--solutions",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="run each exercise cell's solution (DIR/ID.py) instead of the cell; "
        "DIR defaults to notebooks/solutions/",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="whole-run time budget in s (default: 1200 local, 5400 kind)",
    )
    run.add_argument(
        "--lanes",
        type=lanes_count,
        default=DEFAULT_LANES,
        metavar="N",
        help=f"local target: N stacks side by side, each running a share of the notebooks "
        f"(default: {DEFAULT_LANES}; kind and cluster: always 1)",
    )
    run.add_argument(
        "--archive",
        type=Path,
        default=None,
        metavar="FILE",
        help="kind: passed to `up --archive` (an `images save` archive: nothing is pulled)",
    )
    run.set_defaults(handler=run_notebooks)


def run_notebooks(args: argparse.Namespace, settings: Settings) -> int:
    from lab.exercises import SOLUTIONS_DIR
    from lab.runner.run import RunOptions, discover, run_lab

    settings = replace(
        settings,
        images_archive=images_archive(args, settings),
        namespace=args.namespace or settings.namespace,
    )

    notebooks_dir: Path = args.notebooks_dir or settings.notebooks_dir
    try:
        notebooks = discover(notebooks_dir, args.notebooks)
        solutions = None
        if notebooks and args.solutions is not None:  # read them all before anything starts
            from lab.runner.solutions import load_solutions  # nbformat: a second to import

            folder = Path(args.solutions) if args.solutions else settings.repo_root / SOLUTIONS_DIR
            solutions = load_solutions(notebooks, folder)
    except LabError as exc:  # what --notebooks or --solutions named is not there
        raise UsageError(exc.problem, exc.next_step) from exc
    if not notebooks:
        raise UsageError(
            _(
                "No notebooks to run: {folder} holds no NN-name.ipynb files (--notebooks-dir "
                "names the folder that does)."
            ).format(folder=notebooks_dir)
        )
    options = RunOptions(
        target(args, settings),
        notebooks,
        args.report_dir or settings.report_dir,
        args.cell_timeout,
        args.timeout,
        solutions,
        args.lanes,
        settings.lang,
    )
    # A run imports papermill, nbconvert, pandas and matplotlib: the interpreter's last garbage
    # collection over all of that took 0.4-0.9 s after the report (bench/README.md "Lab run").
    # Every kernel and stack is stopped, every file closed by then: nothing is left to collect.
    atexit.register(gc.freeze)
    return run_lab(options, settings, record_for_workshop)


def record_for_workshop(summary: Mapping[str, Any], identity: Identity) -> None:
    """The runner's `record_run` hook: `lab.workshop.status.record_run` (loaded only once a run
    on a Kubernetes lab ends: the kubernetes client takes seconds to import)."""
    from lab.workshop.status import record_run

    record_run(summary, identity)


def lanes_count(text: str) -> int:
    """argparse type of `--lanes`: a whole number from 1 to MAX_LANES."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_LANES:
        raise argparse.ArgumentTypeError(
            _(
                "{text!r}: a whole number of stacks from 1 to {most} (each one is a PostgreSQL, "
                "3 backends and a Prometheus)"
            ).format(text=text, most=MAX_LANES)
        )
    return int(text)
