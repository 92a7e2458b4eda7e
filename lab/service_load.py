"""Load through the backend's real Service, so the Service (kube-proxy), not the lab, decides
which ready pod answers each connection. Lesson 04's rolling-update and readiness checks read
their errors from it.

Where the load enters depends on the target (`TargetSpec.service_load`):

- kind ("node-port"): from this machine to the NodePort Service `backend-node-port`, through
  the host port kind maps to it (`Endpoints.service`); `lab.load` with a new connection per
  request, so kube-proxy routes each request on its own.
- cluster ("job"): a shared cluster has no NodePort for learners, so the load starts inside the
  namespace: the load-generator Job (`lab.loadgen`) GETs `http://backend:3000` (the ClusterIP
  Service) and reports every request on its log, which is read back here through the API
  (`parse_report`) and the Job deleted.
- local: there is no Service; LabError (the cells that use this are `needs-cluster`; the local
  lesson measures the process analog with `lab.load` instead).

Either way the answer is a `lab.load.LoadResult`, one row per request, so a notebook reads the
errors the same way. What this machine cannot show: kube-proxy's choices and a real Job run
happen on a cluster only (the kind workflow job runs lesson 04 through the NodePort); the tests
here run the Job's program against a local server and its calls against the fake API server.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from lab import load, loadgen_script
from lab.errors import LabError, NeedsClusterError
from lab.i18n import _
from lab.load import LATE, NOT_SENT, BackgroundLoad, LoadHandle, LoadPlan, LoadResult
from lab.loadgen import LOAD_LABEL, SERVICE_URL, job_manifest, job_name
from lab.progress import bar as progress_bar
from lab.waits import poll

if TYPE_CHECKING:
    from lab.k8s import NamespaceClient
    from lab.settings import Settings
    from lab.targets import Endpoints, TargetSpec

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # for the generator's pod to start (the image is on the nodes already)
ERRORS = {loadgen_script.LATE: LATE, loadgen_script.NOT_SENT: NOT_SENT}


class ServiceLab(Protocol):
    """What this module needs of `lab.connect()`'s handle (`lab.session.Lab`)."""

    namespace: str
    settings: Settings
    endpoints: Endpoints

    @property
    def target(self) -> str: ...

    @property
    def spec(self) -> TargetSpec: ...

    @property
    def k8s(self) -> NamespaceClient: ...


def path(env: ServiceLab) -> str:
    """Where `start` sends the load on `env`'s target, in words (for a check's `seen`)."""
    how = env.spec.service_load
    if how == "node-port":
        return _("this machine -> NodePort Service backend-node-port ({url})").format(
            url=env.endpoints.service
        )
    if how == "job":
        return _("a load-generator Job in {namespace} -> Service {url}").format(
            namespace=env.namespace, url=SERVICE_URL
        )
    return _("no Service on this target")


def start(
    env: ServiceLab,
    *,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    path: str = "/api/items",
    timeout: float = 10.0,
    max_in_flight: int = 1000,
    progress: bool = True,
) -> BackgroundLoad:
    """Start load through the backend's Service (see the module docstring) and return its
    handle: `.stop()` ends it early, `.result()` waits for the `LoadResult`."""
    how = env.spec.service_load
    options: dict[str, Any] = {"path": path, "timeout": timeout, "max_in_flight": max_in_flight}
    if how == "node-port":
        url = env.endpoints.service
        if not url:
            raise LabError(
                _(
                    "The {target} lab has no URL for the backend's NodePort Service: its kind "
                    "cluster maps no host port to it (an older lab created the cluster)."
                ).format(target=env.target),
                _(
                    "Recreate the cluster: lab.shutdown(), `kind delete cluster --name "
                    "{cluster}`, then lab.connect(target='kind') (creating it takes a few "
                    "minutes)."
                ).format(cluster=env.settings.cluster_name),
            )
        plan = LoadPlan.build(
            url, rate=rate, duration=duration, requests=requests, fresh_connections=True, **options
        )
        return LoadHandle(plan, progress=progress)
    if how == "job":
        plan = LoadPlan.build(
            SERVICE_URL, rate=rate, duration=duration, requests=requests, **options
        )
        return JobLoad(env.k8s, plan, progress=progress)
    raise NeedsClusterError(
        _("There is no Service on the {target} target to send load through.").format(
            target=env.target
        ),
        _(
            "This belongs in a needs-cluster cell; on local, send load to the replicas with "
            "lab.load (the process analog)."
        ),
    )


@contextmanager
def background(env: ServiceLab, **options: Any) -> Iterator[BackgroundLoad]:
    """`start(env, **options)` for the length of a block; leaving it stops the load (call
    `.result()` inside the block to let it all run, after it for what was sent)."""
    handle = start(env, **options)
    try:
        yield handle
    finally:
        handle.stop()
        handle.wait()


class JobLoad(BackgroundLoad):
    """Load from a load-generator Job in the namespace: applied and waited for until its pod
    runs (so a refusal — quota, policy, RBAC — or a pod that never starts is raised here, and
    the load is flowing when the constructor returns), its pod's log followed in a thread, the
    Job deleted when the load ends or `stop()` asks (its pod gets SIGTERM: no new requests,
    those in flight finish, the report's last line still comes)."""

    def __init__(self, k8s: NamespaceClient, plan: LoadPlan, *, progress: bool = True) -> None:
        image = k8s.probe_image
        if not image:
            raise LabError(
                _("No image to run the load generator with (the lab recorded no backend image)."),
                _("Restart the lab: lab.shutdown(), then lab.connect()."),
            )
        if plan.rate is None:  # lab.loadgen_script sends open-loop only
            raise ValueError("a load-generator Job sends at a fixed rate: give the plan a rate")
        self.plan = plan
        self.rate = plan.rate
        self.name = job_name()
        self.selector = f"{LOAD_LABEL}={self.name}"
        self.lines: list[str] = []  # the report so far
        self._k8s = k8s
        self._progress = progress
        self._job = job_manifest(
            self.name,
            image,
            rate=self.rate,
            requests=plan.requests,
            path=plan.path,
            timeout=plan.timeout,
            max_in_flight=plan.max_in_flight,
        )
        self._deleted = False
        self._lock = threading.Lock()
        self._future: Future[LoadResult] = Future()
        k8s.apply([self._job])
        try:
            self.pod = poll(
                self._started,
                what=_("the load generator's pod (Job {name}) to start").format(name=self.name),
                timeout=START_TIMEOUT_S,
                interval=1.0,
                diagnose=lambda: k8s.diagnose(self.selector),
                progress=progress,
            )
        except BaseException:
            self._delete_quietly()
            raise
        self._thread = threading.Thread(target=self._main, name="lab-load-job", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        """Collect the report, delete the Job, then answer (a failed deletion is logged, not
        raised: the Job removes itself `ttlSecondsAfterFinished` later, and the load's result
        is not lost for it)."""
        try:
            result = self._collect()
        except BaseException as exc:
            self._delete_quietly()
            self._future.set_exception(exc)
        else:
            self._delete_quietly()
            self._future.set_result(result)

    def _delete_quietly(self) -> None:
        try:
            self._delete()
        except LabError as exc:
            log.warning("could not delete the load generator's Job %s: %s", self.name, exc)

    def _collect(self) -> LoadResult:
        """Follow the pod's log to its end (re-read whole if the stream broke off before the
        report's last line) and parse it."""
        with progress_bar(
            total=self.plan.requests,
            unit="req",
            disable=not self._progress,
            leave=False,
            desc=_("load {rate}/s from Job {name}").format(rate=f"{self.rate:g}", name=self.name),
        ) as bar:
            for line in self._k8s.follow_log(self.pod):
                self.lines.append(line)
                if line.startswith('{"i"'):
                    bar.update()
        if not any(_is_done(line) for line in self.lines):  # the stream broke off: read it all
            try:
                self.lines = self._k8s.logs(self.pod, tail=self.plan.requests + 10).splitlines()
            except LabError as exc:  # the pod is gone: parse_report says what is missing
                log.warning("could not read the log of %s again: %s", self.pod, exc)
        where = _("Job {name}, pod {pod}").format(name=self.name, pod=self.pod)
        return parse_report(self.lines, self.plan, where=where)

    def _started(self) -> str | None:
        """The pod's name once it runs (or already ran), else None."""
        for pod in self._k8s.pods(self.selector):
            if pod.phase in ("Running", "Succeeded", "Failed"):
                return pod.name
        return None

    def _delete(self) -> None:
        with self._lock:
            if not self._deleted:
                self._deleted = True
                self._k8s.delete([self._job])

    def stop(self) -> None:
        """Schedule no more requests: delete the Job (its pod gets SIGTERM)."""
        self._delete_quietly()


def _is_done(line: str) -> bool:
    return line.startswith("{") and '"event":"done"' in line.replace(" ", "")


def parse_report(lines: Iterable[str], plan: LoadPlan, where: str | None = None) -> LoadResult:
    """The `LoadResult` of a load generator's report (`lab.loadgen_script`'s JSON lines; other
    lines, such as a Python warning, are skipped). LabError when the report has no end (the
    program was killed) or misses a request that was due."""
    where = where or _("the load generator")
    rows: dict[int, dict[str, Any]] = {}
    done: dict[str, Any] | None = None
    other: list[str] = []  # what else the pod printed (a traceback, a warning)
    for line in lines:
        try:
            item = json.loads(line) if line.startswith("{") else None
        except json.JSONDecodeError:
            item = None
        if not isinstance(item, dict):
            other.append(line)
            continue
        if item.get("event") == "done":
            done = item
        elif "i" in item:
            rows[int(item["i"])] = item
    if done is None:
        raise LabError(
            _(
                "The report of {where} has no last line: the program ended before it finished "
                "({count} requests reported). Its other output, last lines:\n{output}"
            ).format(where=where, count=len(rows), output="\n".join(other[-8:])),
            _(
                "The pod was killed (its deadline, or no time to finish after SIGTERM): "
                "lab.connect().k8s.events_frame() says why; run the load again."
            ),
        )
    count = int(done["due"])
    missing = [i for i in range(count) if i not in rows]
    if missing:
        raise LabError(
            _(
                "The report of {where} misses {missing} of the {count} requests that were due "
                "(first: request {first})."
            ).format(where=where, missing=len(missing), count=count, first=missing[0]),
            _("Run the load again; if it repeats, read the pod's log for a traceback."),
        )
    ordered = [rows[i] for i in range(count)]

    def column(key: str) -> list[float]:
        return [math.nan if r[key] is None else float(r[key]) for r in ordered]

    errors = [r["error"] for r in ordered]
    frame = pd.DataFrame(
        {
            "scheduled_s": column("scheduled_s"),
            "sent_s": column("sent_s"),
            "latency_s": column("latency_s"),
            "status": pd.Series([r["status"] for r in ordered], dtype="Int64"),
            "error": pd.Series(
                [
                    load.timeout_error(plan.timeout)
                    if e == loadgen_script.TIMEOUT
                    else ERRORS.get(e, e)
                    for e in errors
                ],
                dtype=object,
            ),
            "url": [plan.url(i) for i in range(count)],
        }
    )
    return LoadResult(plan=plan, df=frame)
