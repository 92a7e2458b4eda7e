"""Command line: `python -m lab up` brings the stack up; `python -m lab run` runs notebooks."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from lab.errors import LabError
from lab.session import State, read_state, write_state
from lab.settings import TARGETS, get_settings
from lab.targets import Endpoints, choose, make_target


class Shutdown(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP, like KeyboardInterrupt is by SIGINT."""


def _raise_shutdown(signum: int, _frame: FrameType | None) -> None:
    raise Shutdown(signal.Signals(signum).name)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="bring the stack up and keep it up until Ctrl-C/SIGTERM")
    up.add_argument(
        "--target",
        choices=TARGETS,
        default=None,
        help="where to run (default: $LAB_TARGET or auto)",
    )
    up.add_argument("--replicas", type=int, default=None, help="backend replicas (default 3)")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON line")
    up.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where to record the running lab (default build/lab-state.json)",
    )
    commands.add_parser(
        "run", help="run the notebooks headless (see `python -m lab run -h`)", add_help=False
    )
    return cli


def describe(endpoints: Endpoints) -> str:
    """The human-readable endpoint list printed by `lab up` without --json."""
    lines = [
        f"target:     {endpoints.target}",
        f"backend:    {endpoints.backend}",
        *(f"  replica:  {url}" for url in endpoints.backends),
        f"prometheus: {endpoints.prometheus}",
        f"grafana:    {endpoints.grafana or '-'}",
        f"chaos token: {endpoints.chaos_token}",
        "Press Ctrl-C to stop and clean up.",
    ]
    return "\n".join(lines)


def up(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.state_file is not None:
        settings = replace(settings, state_file_override=args.state_file.resolve())
    running = read_state(settings.state_file)
    if running is not None:
        raise LabError(
            f"A lab on target={running.endpoints.target} already runs (pid "
            f"{running.pid}, state file {settings.state_file}).",
            f"Use it, or stop it first: kill {running.pid}.",
        )
    choice = choose(args.target or settings.target)
    print(choice.reason, file=sys.stderr, flush=True)
    target = make_target(choice.name, settings, args.replicas)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_shutdown)
    try:
        endpoints = target.up()
        write_state(settings.state_file, State(endpoints, os.getpid(), settings.namespace))
        print(endpoints.to_json() if args.json else describe(endpoints), flush=True)
        while True:
            signal.pause()
    except (KeyboardInterrupt, Shutdown):
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # let teardown finish
        target.down()
        state = read_state(settings.state_file)
        if state is not None and state.pid == os.getpid():
            settings.state_file.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        run = importlib.import_module("lab.run")  # imported only when asked: it pulls in nbclient
        return int(run.main(args[1:]))
    try:
        return up(parser().parse_args(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
