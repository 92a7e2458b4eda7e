"""`lab.connect()` / `lab.shutdown()`: a notebook's handle on the stack `lab up` runs."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

from lab import i18n, stack
from lab.errors import LabError, LabNotRunningError, NeedsClusterError
from lab.i18n import _
from lab.identity import Identity
from lab.lessons import PARTS, Lesson, expected_parts, part_lesson, with_part
from lab.lessons import lesson as lesson_row
from lab.procs import pid_alive
from lab.settings import Settings, check_namespace, get_settings
from lab.stack import StackProcess, State, read_state
from lab.targets import Endpoints, ReplicaRecord, TargetSpec, choose, satisfied_by, spec

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from lab.chaos import BackendChaos
    from lab.k8s import NamespaceClient, PodState
    from lab.prom import Prom


@dataclass(frozen=True)
class Built:
    """What `Lab.apply` built: the lesson's part, where, and everything built now."""

    lesson: Lesson
    on_cluster: bool  # kind or cluster: objects applied; local: a process analog
    namespace: str
    parts: tuple[str, ...]

    def __str__(self) -> str:
        row = self.lesson
        built = {"part": row.part, "lesson": row.id, "parts": " -> ".join(self.parts)}
        if self.on_cluster:
            names = row.objects or (("Namespace", self.namespace),)
            return _(
                "built {part} (lesson {lesson}): applied (server-side apply), among them "
                "{objects}.\nbuilt so far: {parts}"
            ).format(objects=", ".join(f"{k}/{n}" for k, n in names), **built)
        if row.local_analog:
            return _(
                "built {part} (lesson {lesson}): started its process analog on local: "
                "{analog}.\nbuilt so far: {parts}"
            ).format(analog=_(row.local_analog), **built)
        return _(
            "built {part} (lesson {lesson}): no process analog on local: these objects need a "
            "cluster (needs-cluster cells).\nbuilt so far: {parts}"
        ).format(**built)


@dataclass
class Lab:
    """A handle on the running stack; `prom`, `chaos` and `k8s` are created on first use."""

    endpoints: Endpoints
    namespace: str
    pid: int
    reason: str
    settings: Settings = field(repr=False)
    started: StackProcess | None = field(default=None, repr=False)  # set when connect() started it
    identity: Identity | None = None  # kind/cluster: where `k8s` connects (the state file's)

    @property
    def target(self) -> str:
        return self.endpoints.target

    @property
    def spec(self) -> TargetSpec:
        """What the running target has (`lab.targets.spec`)."""
        return spec(self.target)

    @property
    def on_cluster(self) -> bool:
        return self.spec.has_cluster

    @property
    def peer_namespace(self) -> str:
        """Where lesson 05 probes from another namespace (`TargetSpec.peer_namespace`)."""
        return self.spec.peer_namespace(self.namespace)

    parts: tuple[str, ...] = PARTS  # what is built (`lab.lessons`): the state file's

    @cached_property
    def prom(self) -> Prom:
        from lab.prom import Prom

        self._needs("monitoring", "Prometheus")
        return Prom(self.endpoints.prometheus)

    @cached_property
    def chaos(self) -> BackendChaos:
        from lab.chaos import BackendChaos

        self._needs("backend", _("The backend"))
        return BackendChaos(self.endpoints.backends, self.endpoints.chaos_token)

    def _needs(self, part: str, what: str) -> None:
        if part not in self.parts:
            row = part_lesson(part)
            raise LabError(
                _("{what} is not built yet: lesson {lesson} ({notebook}) builds it.").format(
                    what=what, lesson=row.id, notebook=row.notebook
                ),
                _(
                    'Build it: env.apply("{part}") (after the parts before it), or start at '
                    "that lesson: lab.connect(lesson={next}).",
                ).format(part=part, next=row.number + 1),
            )

    def apply(self, part: str) -> Built:
        """Build `part` of the stack on what is built (`lab.lessons.PARTS`, the design's order:
        LabError saying why when a part before it is missing) and wait until it is ready. On
        kind and cluster the part's objects are applied with server-side apply; on local its
        process analog starts (`lab.lessons` says which)."""
        wanted = with_part(self.parts, part)
        state = stack.build(self.settings, wanted, self.settings.rollout_timeout + 120)
        self.refresh(state)
        return Built(part_lesson(part), self.on_cluster, self.namespace, self.parts)

    def refresh(self, state: State) -> None:
        """Take the endpoints and parts of a state `lab up` just wrote."""
        self.endpoints, self.parts = state.endpoints, state.parts
        for name in ("prom", "chaos"):  # built for the old endpoints
            self.__dict__.pop(name, None)

    def replica_records(self) -> Sequence[ReplicaRecord]:
        """Local target: each replica's restarts and last exit code, as `lab up` records them."""
        state = read_state(self.settings.state_file)
        return state.replicas if state is not None else ()

    def backend_pods(self) -> Sequence[PodState]:
        """kind or cluster: the backend pods (restarts and how each last ended)."""
        from lab.targets.kube import BACKEND_PODS

        return self.k8s.pods(BACKEND_PODS.selector)

    @cached_property
    def k8s(self) -> NamespaceClient:
        """The running lab's namespace through the client its recorded identity builds."""
        if not self.on_cluster:
            raise NeedsClusterError(
                _("This needs a Kubernetes cluster, but the lab runs on target={target}.").format(
                    target=self.target
                ),
                _(
                    "Skip this cell (it is tagged needs-cluster), or start Docker and run the "
                    "lab with target='kind'."
                ),
            )
        if self.identity is None:
            raise LabError(
                _(
                    "The running {target} lab did not record its Kubernetes identity (an older "
                    "version of the lab started it)."
                ).format(target=self.target),
                _("Restart it: lab.shutdown(), then lab.connect() again."),
            )
        from lab.k8s import NamespaceClient

        return NamespaceClient.connect(self.identity)


def connect(
    target: str | None = None,
    start: bool = True,
    settings: Settings | None = None,
    lesson: int | None = None,
    namespace: str | None = None,
) -> Lab:
    """Attach to the running lab, or start `lab up` in the background and wait for it.

    `target` and `namespace` are the notebooks' TARGET and NAMESPACE parameters; None means
    "from the settings": any running lab's target (else LAB_TARGET, else auto) and the running
    lab's recorded namespace (else LAB_NAMESPACE, else ironclad-demo). A namespace given must be
    the running lab's; a lab started here gets it. A `lab up` started here stops when this
    process (the kernel) ends. With `lesson`, the lab is brought to exactly what that lesson
    expects on entry (the parts the lessons before it build, `lab.lessons`; a lab started here
    starts so), and one line on stderr says what left in the stack breaks that lesson (chaos
    still on, a replica not ready) and the command that fixes it.
    """
    settings = settings or get_settings()
    i18n.use(settings.lang, settings.repo_root)  # what lab says in this notebook from now on
    if lesson is not None:
        lesson_row(lesson)  # refused before anything starts: a lesson that does not exist
    if namespace is not None:
        settings = replace(settings, namespace=check_namespace(namespace, "NAMESPACE"))
    env = _attach_or_start(target, start, settings, namespace is not None, lesson)
    _CURRENT[:] = [env]
    if lesson is not None:
        from lab.chaos import leftovers  # pandas and requests: only when asked

        wanted = expected_parts(lesson)
        if env.parts != wanted:  # a lab of another lesson: built up (or back) to this one's
            env.refresh(stack.build(env.settings, wanted, settings.rollout_timeout + 120))
        if env.parts:
            starts = _(
                "lesson {lesson} starts from what the lessons before it built: {built}"
            ).format(lesson=f"{lesson:02d}", built=", ".join(env.parts))
        else:
            starts = _("lesson {lesson} starts from nothing built yet").format(
                lesson=f"{lesson:02d}"
            )
        env.reason += "\n" + starts

        problems = leftovers(env.endpoints.backends, env.endpoints.chaos_token)
        if problems:
            print(
                _(
                    "warning: left over from an earlier lesson: {problems}. Run `ironclad-lab "
                    "reset --to {lesson}` in a terminal, then this cell again."
                ).format(problems="; ".join(problems), lesson=lesson),
                file=sys.stderr,
            )
    return env


_CURRENT: list[Lab] = []  # this process' lab: the last one connect() returned


def session_settings() -> Settings:
    """The settings of this process' lab (the last `connect()`: its namespace is the session's),
    else the environment's: what the notebook side (exercise verifiers, `%%cluster`'s objects)
    renders with. The session is the notebooks' entry point: the one place they read the
    environment."""
    return _CURRENT[0].settings if _CURRENT else get_settings()


def session_namespace() -> str:
    """The namespace of this process' lab, else LAB_NAMESPACE's (`session_settings`)."""
    return session_settings().namespace


def _attach_or_start(
    target: str | None,
    start: bool,
    settings: Settings,
    namespace_given: bool = True,
    lesson: int | None = None,
) -> Lab:
    state = read_state(settings.state_file)
    if state is not None and state.parent is not None and not pid_alive(state.parent):
        # Its session is gone and it is stopping itself (or about to): wait, then start anew.
        log.info("the lab of an ended session (pid %d) is stopping; waiting for it", state.pid)
        stack.stop(settings, timeout=settings.rollout_timeout + 60)
        state = None
    if state is not None:
        running = state.endpoints.target
        if not satisfied_by(target, running):
            raise LabError(
                _(
                    "A lab on target={running} is running (pid {pid}); you asked for "
                    "target={target}."
                ).format(running=running, pid=state.pid, target=target),
                _("Use it, or stop it first: lab.shutdown()."),
            )
        if namespace_given and state.namespace != settings.namespace:
            raise LabError(
                _(
                    "The running lab (pid {pid}) uses namespace {running}; you asked for "
                    "{namespace}."
                ).format(pid=state.pid, running=state.namespace, namespace=settings.namespace),
                _("Use its namespace, or stop it first: lab.shutdown()."),
            )
        reason = _("target={target}: attached to the running lab (pid {pid})").format(
            target=running, pid=state.pid
        )
        settings = replace(settings, namespace=state.namespace)
        return Lab(
            state.endpoints,
            state.namespace,
            state.pid,
            reason,
            settings,
            identity=state.identity,
            parts=state.parts,
        )
    if not start:
        raise LabNotRunningError(
            _("No lab is running."),
            _(
                "Start one: `ironclad-lab up --target local` in a terminal, or "
                "lab.connect(start=True)."
            ),
        )
    choice = choose(target or settings.target, settings)
    environment = {**os.environ, "LAB_NAMESPACE": settings.namespace, "LAB_LANG": settings.lang}
    started = StackProcess(choice.name, settings, environ=environment, lesson=lesson)
    state = started.start()
    return Lab(
        state.endpoints,
        state.namespace,
        state.pid,
        choice.reason,
        settings,
        started,
        state.identity,
        state.parts,
    )


def shutdown(settings: Settings | None = None, timeout: float = 120.0) -> bool:
    """Stop the running `lab up` (it tears everything down); False if none ran. `settings`:
    default, the session's (`session_settings`)."""
    return stack.stop(settings or session_settings(), timeout) is not None
