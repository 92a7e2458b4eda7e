"""Faults on purpose: the backend's chaos endpoints, pod and replica kills, and experiments.

Actions take keyword arguments and return what they touched. An Experiment checks its steady
state, runs its method, checks the steady state again and always runs its rollbacks, even
when the method raises, the steady state does not hold at first, or the cell is interrupted.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd
import requests

from lab.checks import describe
from lab.errors import ChaosError, LabError
from lab.i18n import N_, _
from lab.net import http_ok
from lab.procs import listener_pid
from lab.waits import poll

if TYPE_CHECKING:
    from lab.k8s import PodState

# The backend's exit code when an allocation fails under RLIMIT_AS (backend.chaos
# EXIT_OUT_OF_MEMORY; 128 + SIGKILL, what Kubernetes reports for an OOM kill).
EXIT_OUT_OF_MEMORY = 137

STATUS_COLUMNS = ["url", "enabled", "latency_ms", "error_ratio"]
POD_ACTION_COLUMNS = ["pod", "action", "done", "detail"]
MEMORY_COLUMNS = ["url", "held_mb", "detail"]
RESTART_COLUMNS = ["replica", "restarts", "last_exit_code", "reason"]
LAB_RUNNING_FIX = N_("Is the lab running? `lab.connect()` starts or attaches to it.")
# How long allocating and touching a few hundred MiB may take on a busy machine.
MEMORY_TIMEOUT_S = 60.0


class BackendChaos:
    """The chaos controls of every backend replica: `BackendChaos(env.endpoints.backends, tok)`."""

    def __init__(self, urls: Sequence[str], token: str, *, timeout: float = 5.0) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"BackendChaos({self.urls!r})"

    def _each(self, method: str, path: str) -> pd.DataFrame:
        """Call `path` on every replica; one row per replica with its chaos state afterwards."""
        rows: list[dict[str, Any]] = []
        for url in self.urls:
            where = f"{method} {url}{path}"
            try:
                response = self._session.request(method, f"{url}{path}", timeout=self.timeout)
            except requests.RequestException as exc:
                raise ChaosError(
                    _("{call} failed: {error}").format(call=where, error=exc) + _touched(rows),
                    _(LAB_RUNNING_FIX),
                ) from exc
            if response.status_code != 200:
                raise ChaosError(
                    _("{call} answered {status}: {detail}").format(
                        call=where, status=response.status_code, detail=_detail(response)
                    )
                    + _touched(rows),
                    _(
                        "Use the token from `env.endpoints.chaos_token`; latency is 0-10000 ms "
                        "and the error rate a ratio from 0 to 1."
                    ),
                )
            rows.append({"url": url, **response.json()})
        return pd.DataFrame(rows, columns=STATUS_COLUMNS)

    def status(self) -> pd.DataFrame:
        """One row per replica: url, enabled, latency_ms, error_ratio."""
        return self._each("GET", "/api/chaos")

    def enable(self) -> pd.DataFrame:
        """Turn faults on (the configured latency and error rate start to apply)."""
        return self._each("POST", "/api/chaos/enable")

    def disable(self) -> pd.DataFrame:
        """Turn faults off (settings are kept)."""
        return self._each("POST", "/api/chaos/disable")

    def set_latency(self, ms: int) -> pd.DataFrame:
        """Added latency on business routes, in ms (applies only while enabled)."""
        return self._each("POST", f"/api/chaos/latency/{int(ms)}")

    def set_error_rate(self, ratio: float) -> pd.DataFrame:
        """Share of business requests answered 500 (applies only while enabled)."""
        return self._each("POST", f"/api/chaos/errors/{ratio:g}")

    def memory_hog(self, mb: int, url: str | None = None) -> pd.DataFrame:
        """Make one replica (default: the first) allocate and hold `mb` MiB; 0 frees it.

        Acts at once, whether chaos is enabled or not. Beyond the replica's memory limit it
        dies with exit code 137 and is restarted while the others serve (kind: the kernel's OOM
        killer, `OOMKilled`; local: RLIMIT_AS, the process analog); `restarts(env)` shows it.
        One row: the url, the MiB now held (None when the replica died answering) and what
        happened.
        """
        where = (url or self.urls[0]).rstrip("/")
        call = f"POST {where}/api/chaos/memory/{int(mb)}"
        try:
            response = self._session.post(
                f"{where}/api/chaos/memory/{int(mb)}", timeout=MEMORY_TIMEOUT_S
            )
        except requests.ConnectionError:
            row = [where, None, _("no answer: the replica died (see lab.chaos.restarts(env))")]
            return pd.DataFrame([row], columns=MEMORY_COLUMNS)
        except requests.RequestException as exc:
            raise ChaosError(
                _("{call} failed: {error}").format(call=call, error=exc), _(LAB_RUNNING_FIX)
            ) from exc
        if response.status_code != 200:
            raise ChaosError(
                _("{call} answered {status}: {detail}").format(
                    call=call, status=response.status_code, detail=_detail(response)
                ),
                _("Use the token from `env.endpoints.chaos_token`; the size is 0-1024 MiB."),
            )
        held = int(response.json()["held_mb"])
        holding = _("holding {held} MiB").format(held=held)
        return pd.DataFrame([[where, held, holding]], columns=MEMORY_COLUMNS)

    def reset(self) -> pd.DataFrame:
        """Faults off and zeroed, hogged memory freed, on every replica; the final state."""
        self.disable()
        self.set_latency(0)
        self._each("POST", "/api/chaos/memory/0")
        return self.set_error_rate(0)


class ReplicaExits(Protocol):
    """What the local target's supervisor records of one replica (`lab.targets.ReplicaRecord`)."""

    @property
    def url(self) -> str: ...

    @property
    def restarts(self) -> int: ...

    @property
    def last_exit_code(self) -> int | None: ...


class RestartsSource(Protocol):
    """What `restarts` reads (a `lab.session.Lab`)."""

    @property
    def on_cluster(self) -> bool: ...

    def replica_records(self) -> Sequence[ReplicaExits]: ...

    def backend_pods(self) -> Sequence[PodState]: ...


def restarts(env: RestartsSource) -> pd.DataFrame:
    """One row per backend replica: restarts, last exit code and why it last ended.

    kind: each pod's container status (`restartCount`, `lastState.terminated`: `OOMKilled`
    with exit code 137 after a memory hog beyond the limit). local: what the supervisor
    recorded (exit code 137 is the backend's out-of-memory exit under RLIMIT_AS, -9 a
    SIGKILL), labelled as the process analog.
    """
    if env.on_cluster:
        rows = [pod_restarts(pod) for pod in env.backend_pods()]
    else:
        rows = [
            [r.url, r.restarts, r.last_exit_code, exit_reason(r.last_exit_code)]
            for r in env.replica_records()
        ]
    frame = pd.DataFrame(rows, columns=RESTART_COLUMNS)
    return frame.astype({"restarts": "int64", "last_exit_code": "Int64"})  # NA: never exited


def exit_reason(code: int | None) -> str:
    """What a local replica's exit code means (the process analog of a pod's reason)."""
    if code is None:
        return ""
    if code == EXIT_OUT_OF_MEMORY:
        return _("out of memory (process analog of OOMKilled: RLIMIT_AS)")
    if code < 0:
        return _("killed by {signal}").format(signal=signal.Signals(-code).name)
    return _("exited")


def pod_restarts(pod: PodState) -> list[Any]:
    """[name, restarts, last exit code, last reason] of a backend pod (one container)."""
    return [pod.name, pod.restarts, pod.last_exit_code, pod.last_reason]


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


def _touched(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    return " " + _("(already changed: {urls})").format(urls=", ".join(r["url"] for r in rows))


class PodCluster(Protocol):
    """What pod chaos needs from `lab.k8s.NamespaceClient` (kept to two methods)."""

    def pods(self, selector: str | None = None) -> Sequence[PodState]: ...

    def delete_pod(self, pod: str, grace_period_seconds: int | None = None) -> None: ...


def pick_pods(
    cluster: PodCluster, *, name: str | None, selector: str | None, count: int | None
) -> list[str]:
    """`name`, or `count` random pods (all when None) matching `selector` not already deleting."""
    if (name is None) == (selector is None):
        raise ValueError("give exactly one of name= or selector=")
    if name is not None:
        return [name]
    candidates = sorted(p.name for p in cluster.pods(selector) if not p.deleting)
    if not candidates:
        raise ChaosError(
            _("No running pod matches {selector}.").format(selector=repr(selector)),
            _("Check the selector with `env.k8s.pods_frame(selector)`."),
        )
    return candidates if count is None else random.sample(candidates, min(count, len(candidates)))


def kill_pod(
    cluster: PodCluster,
    *,
    name: str | None = None,
    selector: str | None = None,
    count: int | None = 1,
    grace_period_seconds: int = 0,
) -> pd.DataFrame:
    """Delete pods like a crash would (no PodDisruptionBudget check); rows: what was killed."""
    rows = []
    for pod in pick_pods(cluster, name=name, selector=selector, count=count):
        cluster.delete_pod(pod, grace_period_seconds=grace_period_seconds)
        detail = _("deleted (grace {seconds} s)").format(seconds=grace_period_seconds)
        rows.append([pod, "kill", True, detail])
    return pd.DataFrame(rows, columns=POD_ACTION_COLUMNS)


def kill_replica(
    url: str, *, signum: int = signal.SIGKILL, times: int = 1, timeout: float = 60.0
) -> pd.DataFrame:
    """Local target: signal the backend process serving `url`, like a crash would; with
    `times` > 1, signal each new process again as soon as it listens (a crash loop).

    The local target restarts its replicas the way the kubelet does (`lab.targets.backoff`):
    a replica's first crash is restarted at once on the same port, each further crash after
    the back-off (`LAB_RESTART_DELAY` seconds, doubling) — so a replica killed twice stays
    down, as a pod in `CrashLoopBackOff`. One that exits cleanly (SIGTERM drains it) is replaced
    at once. Waits up to `timeout` s for each restart. Rows: one per kill.
    """
    rows, killed = [], 0
    for _kill in range(times):
        pid = listener_pid(url) if not killed else _restarted(url, killed, timeout)
        os.kill(pid, signum)
        killed = pid
        detail = _("pid {pid} got {signal}").format(pid=pid, signal=signal.Signals(signum).name)
        rows.append([url, "kill", True, detail])
    return pd.DataFrame(rows, columns=POD_ACTION_COLUMNS)


def _restarted(url: str, killed: int, timeout: float) -> int:
    """The pid of the process that listens on `url` after `killed` (polled)."""

    def new_listener() -> int | None:
        try:
            pid = listener_pid(url)
        except LabError:  # nothing listens yet: not restarted
            return None
        return pid if pid != killed else None

    return poll(
        new_listener,
        what=_("{url} restarted").format(url=url),
        timeout=timeout,
        interval=0.1,
        progress=False,
    )


Phase = Literal["steady-state before", "method", "steady-state after", "rollback"]
Step = Callable[[], object] | tuple[str, Callable[[], object]]
PROBE_PHASES = ("steady-state before", "steady-state after")


@dataclass(frozen=True)
class StepResult:
    """One step of a run: a probe holds when it returns something truthy without raising."""

    phase: Phase
    name: str
    ok: bool
    output: object
    error: str | None
    started_s: float
    duration_s: float


@dataclass
class Journal:
    """What an experiment did: `completed`, `deviated` (steady state lost) or `aborted`."""

    title: str
    status: str = "running"
    steps: list[StepResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [f"{s.phase} {s.name}: {s.error}" for s in self.steps if s.error]

    def to_frame(self) -> pd.DataFrame:
        """One row per step: phase, name, ok, output, error, started_s, duration_s."""
        return pd.DataFrame(
            [
                [
                    s.phase,
                    s.name,
                    s.ok,
                    describe(s.output),
                    s.error,
                    round(s.started_s, 3),
                    round(s.duration_s, 3),
                ]
                for s in self.steps
            ],
            columns=["phase", "name", "ok", "output", "error", "started_s", "duration_s"],
        )


@dataclass
class Experiment:
    """steady state → method → steady state again → rollbacks (always).

    Steps are callables, or (name, callable) pairs; probes (steady_state) must return
    something truthy, actions (method, rollbacks) only must not raise.
    """

    title: str
    steady_state: Sequence[Step] = ()
    method: Sequence[Step] = ()
    rollbacks: Sequence[Step] = ()

    def run(self) -> Journal:
        journal = Journal(self.title)
        start = time.monotonic()
        try:
            if not (
                self._run_steps(journal, "steady-state before", self.steady_state, start)
                and self._run_steps(journal, "method", self.method, start)
            ):
                journal.status = "aborted"
            elif not self._run_steps(journal, "steady-state after", self.steady_state, start):
                journal.status = "deviated"
            else:
                journal.status = "completed"
        finally:  # also on KeyboardInterrupt: leave the system as it was
            self._run_steps(journal, "rollback", self.rollbacks, start, stop_on_failure=False)
            journal.duration_s = time.monotonic() - start
        return journal

    @staticmethod
    def _run_steps(
        journal: Journal,
        phase: Phase,
        steps: Sequence[Step],
        start: float,
        stop_on_failure: bool = True,
    ) -> bool:
        """Run steps in order, journaling each; False as soon as one fails (or at the end)."""
        all_ok = True
        for step in steps:
            name, fn = step if isinstance(step, tuple) else (_name(step), step)
            began = time.monotonic()
            output: object = None
            error = None
            try:
                output = fn()
                ok = phase not in PROBE_PHASES or bool(output)
            except Exception as exc:  # a failed step is data in the journal
                ok, error = False, f"{type(exc).__name__}: {exc}"
            journal.steps.append(
                StepResult(phase, name, ok, output, error, began - start, time.monotonic() - began)
            )
            all_ok = all_ok and ok
            if not ok and stop_on_failure:
                return False
        return all_ok


def _name(fn: Callable[[], object]) -> str:
    return str(
        getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", repr(fn))
    )


def chaos_left(backends: Sequence[str], token: str, timeout: float = 3.0) -> list[str]:
    """Replicas whose chaos is not off, one line each (unreachable ones say so)."""
    problems = []
    for url in backends:
        try:
            [state] = BackendChaos([url], token, timeout=timeout).status().to_dict("records")
        except ChaosError:
            problems.append(_("{url} does not answer").format(url=url))
            continue
        on = [
            text
            for text, value in (
                (_("enabled"), state["enabled"]),
                (_("latency {ms} ms").format(ms=state["latency_ms"]), state["latency_ms"]),
                (
                    _("error ratio {ratio}").format(ratio=f"{state['error_ratio']:g}"),
                    state["error_ratio"],
                ),
            )
            if value
        ]
        if on:
            problems.append(_("chaos on {url}: {settings}").format(url=url, settings=", ".join(on)))
    return problems


def leftovers(backends: Sequence[str], token: str) -> list[str]:
    """What an earlier lesson's chaos left that breaks any lesson, one line each (cheap: each
    replica's chaos state and readiness): what `connect(lesson=N)` warns of and `reset` fixes."""
    not_ready = [u for u in backends if not http_ok(f"{u}/health/ready")]
    return chaos_left(backends, token) + [_("{url} is not ready").format(url=u) for u in not_ready]
