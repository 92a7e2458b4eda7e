"""One error hierarchy for the lab. Every message says what went wrong and what to do next,
in the learner's language (lab.i18n): a caller passes its `problem` and `next_step` translated,
the frames here (a timeout, a failed check) are translated where they are built."""

from __future__ import annotations

from pathlib import Path

from lab.i18n import _


class LabError(Exception):
    """Base class: `problem` is what went wrong, `next_step` what the learner should do."""

    def __init__(self, problem: str, next_step: str = "") -> None:
        self.problem = problem
        self.next_step = next_step
        super().__init__(
            _("{problem}\n→ {next_step}").format(problem=problem, next_step=next_step)
            if next_step
            else problem
        )


class UsageError(LabError):
    """The command line asks for something that cannot be: a flag where it does not apply, a
    value out of range. `ironclad-lab` exits 2 for it, as argparse does for its own checks."""


class ToolMissingError(LabError):
    """A required program is not installed."""

    def __init__(self, tool: str, install: str) -> None:
        super().__init__(
            _("{tool} not found.").format(tool=tool),
            _("Install it: {install}").format(install=install),
        )


class TargetUnavailableError(LabError):
    """The chosen target (kind or local) cannot run on this machine."""


class LabTimeoutError(LabError):
    """A wait ran out of time; `detail` carries the last error or diagnostics."""

    def __init__(self, what: str, timeout: float, detail: str = "", next_step: str = "") -> None:
        self.what = what
        self.timeout = timeout
        self.detail = detail
        problem = (
            _("Timed out after {timeout:g} s waiting for {what}.\nLast state:\n{detail}")
            if detail
            else _("Timed out after {timeout:g} s waiting for {what}.")
        )
        super().__init__(
            problem.format(timeout=timeout, what=what, detail=detail),
            next_step
            or _(
                "Read the last state above; fix the cause and "
                "run the cell again (timings live in the `parameters` cell)."
            ),
        )


class ProcessFailedError(LabError):
    """A local process failed to start or exited early."""

    def __init__(self, name: str, reason: str, log_path: Path | None = None) -> None:
        self.log_path = log_path
        lines: list[str] = []
        if log_path is not None and log_path.exists():
            lines = log_path.read_text(errors="replace").splitlines()[-15:]
        problem = (
            _("{name} {reason}.\nLast log lines:\n{lines}") if lines else _("{name} {reason}.")
        )
        next_step = (
            _("Fix the cause shown in its log and start again. Full log: {log_path}")
            if log_path
            else _("Fix the cause shown in its log and start again.")
        )
        super().__init__(
            problem.format(name=name, reason=reason, lines="\n".join(lines)),
            next_step.format(log_path=log_path),
        )


class CheckFailedError(LabError):
    """A `lab.check` did not hold: says what was expected, what was seen, and what to try."""

    def __init__(self, expected: str, seen: str, hint: str = "") -> None:
        self.expected = expected
        self.seen = seen
        self.hint = hint
        super().__init__(
            _("Check failed: expected {expected}, but saw {seen}.").format(
                expected=expected, seen=seen
            ),
            hint or _("Re-run the cells above this one and compare with the narrative."),
        )


class ExerciseFailedError(LabError):
    """A learner's exercise answer did not hold: what was seen, and a hint at the concept."""

    def __init__(self, exercise: str, seen: str, hint: str) -> None:
        self.exercise = exercise
        self.seen = seen
        self.hint = hint
        super().__init__(
            _("Exercise {exercise}: not yet — saw {seen}.").format(exercise=exercise, seen=seen),
            hint,
        )

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the verdict and the hint alone (the
        learner's answer is what is wrong, not a line of `lab`)."""
        return [
            _("✗ [not yet] exercise {exercise}: saw {seen}.").format(
                exercise=self.exercise, seen=self.seen
            ),
            _("→ hint: {hint}").format(hint=self.hint),
            _("  (try again; stuck? {call})").format(call=f"lab.solution({self.exercise!r})"),
        ]


class PrometheusError(LabError):
    """Prometheus could not be reached or refused a query."""


class ChaosError(LabError):
    """A chaos action was refused or could not reach a backend replica."""


class StateFileLockedError(LabError):
    """Another process (a `lab up`, a `down` cleaning up) holds the state file's lock;
    `holder` is what it wrote there (its pid and what it is doing)."""

    def __init__(self, problem: str, next_step: str, holder: str) -> None:
        self.holder = holder
        super().__init__(problem, next_step)


class LabNotRunningError(LabError):
    """No `ironclad-lab up` is running, and none may be started."""


class NeedsClusterError(LabError):
    """A Kubernetes call while the lab runs on the local target."""


class CommandFailedError(LabError):
    """An external command (docker, kind, kubectl) exited non-zero; its output says why."""

    def __init__(self, command: str, output: str) -> None:
        self.command = command
        super().__init__(
            _("`{command}` failed:\n{output}").format(command=command, output=output.strip()),
            _(
                "Run `{command}` yourself to see the whole story; for Docker problems "
                "`docker info` tells whether the engine is up. Or use --target local."
            ).format(command=command),
        )


class ImageArchiveError(LabError):
    """Listing, saving or loading the kind path's images failed (`lab.images`,
    `lab.image_archive`)."""
