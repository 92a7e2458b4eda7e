"""The `%%cluster` cell magic, and the IPython extension that registers it.

On a cluster target the cell runs. On the local target it is explained instead of run
(`lab.notrun`): the Kubernetes calls it makes, what its checks expect, and the objects named by
`%%cluster --show Kind/name ...` (rendered once per kernel). `load_ipython_extension` makes the
magic work before `import lab` ran: the lab's kernel spec (`lab.kernelspec`) and the headless
runner's kernels load this module as an extension (`--ext=lab.magics`).
"""

from __future__ import annotations

import dataclasses
import os
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from lab import i18n
from lab.checks import publish
from lab.errors import LabError
from lab.i18n import _
from lab.notrun import NotRun, Shown, explain, parse_show
from lab.settings import Settings, get_settings
from lab.stack import read_state
from lab.targets import TargetSpec, requested_spec, spec

Objects = Callable[[], Sequence[dict[str, Any]]]
# `%%cluster --explain ...`: explain the cell, never run it, whatever the target. The headless
# runner explains its skipped cells this way, inside the notebook's kernel, so the checks'
# fields are filled from the kernel's variables as they are for a learner.
EXPLAIN_FLAG = "--explain"


def current_target(settings: Settings) -> TargetSpec | None:
    """The target of the running lab (state file), else an explicit LAB_TARGET, else None."""
    state = read_state(settings.state_file)
    if state is not None:
        return spec(state.endpoints.target)
    return requested_spec(settings.target, "LAB_TARGET")


def rendered_objects(settings: Settings) -> Objects:
    """The kind overlay's objects in the session's namespace, rendered on first use and then
    remembered."""

    @cache
    def objects() -> Sequence[dict[str, Any]]:
        from lab.manifests import render  # kubectl kustomize: only when a cell shows objects
        from lab.session import session_namespace

        return render("kind", settings, namespace=session_namespace())

    return objects


def not_run(
    line: str,
    body: str,
    target: str,
    objects: Objects,
    namespace: Mapping[str, Any] | None = None,
    shown: set[str] | None = None,
) -> NotRun:
    """Explain the cluster cell `body` (`line`: the magic's arguments) instead of running it;
    `namespace` fills its checks' fields, `shown` (updated) names the objects already shown."""
    show = parse_show(line)
    shown = set() if shown is None else shown
    try:
        rendered = objects() if show else ()
    except LabError as exc:  # the explanation still stands without the objects
        reason = exc.problem.splitlines()[0]
        explained = explain(body, target, namespace=namespace)
        not_rendered = "# " + _("not rendered here: {reason}").format(reason=reason) + "\n"
        unrendered = [Shown(ref, "", not_rendered) for ref in show]
        return dataclasses.replace(explained, objects=unrendered)
    explained = explain(body, target, rendered, show, namespace=namespace, shown_before=shown)
    shown.update(show)
    return explained


def cluster(
    line: str,
    cell: str,
    shell: Any,
    settings: Settings,
    objects: Objects,
    shown: set[str] | None = None,
) -> NotRun | None:
    """Run `cell` in `shell` unless the lab runs locally; then return its explanation."""
    target = current_target(settings)  # None: not known yet, the cell runs (and says why not)
    if EXPLAIN_FLAG in line.split() or (target is not None and not target.has_cluster):
        where = target.name if target is not None else _("(none: no lab runs)")
        return not_run(line, cell, where, objects, shell.user_ns, shown)
    result = shell.run_cell(cell, store_history=False)
    result.raise_error()  # a failing cell must fail the outer cell (the headless runner sees it)
    return None


def one_line_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> None:
    """IPython's handler for a `LabError` raised in a cell: its message (what went wrong, what
    to do next) instead of a traceback. The cell still fails (papermill sees an error)."""
    shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])


def register(shell: Any, settings: Settings) -> None:
    """Register `%%cluster` in an IPython shell (objects are shown once per shell), and show
    `LabError`s without a traceback."""
    objects = rendered_objects(settings)
    shown: set[str] = set()
    shell.set_custom_exc((LabError,), one_line_error)

    def cluster_magic(line: str, cell: str) -> None:
        explained = cluster(line, cell, shell, settings, objects, shown)
        if explained is not None:
            publish(explained.bundle())  # what the cell would have shown, marked not run

    shell.register_magic_function(cluster_magic, magic_kind="cell", magic_name="cluster")


def load_ipython_extension(shell: Any) -> None:
    """IPython extension entry point (`%load_ext lab.magics`, `--ext=lab.magics`): registers
    `%%cluster` and speaks the learner's language (`Settings.lang`) in the kernel.

    It also puts the kernel's own environment's scripts directory first on PATH, as an activated
    environment would: a JupyterLab started as `.venv/bin/jupyter lab` gives its kernels the
    PATH it was given, without the kubectl the `lab` extra installed there."""
    scripts = sysconfig.get_path("scripts")
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, (scripts, os.environ.get("PATH"))))
    settings = get_settings()
    i18n.use(settings.lang, settings.repo_root)  # the kernel speaks the learner's language
    register(shell, settings)
