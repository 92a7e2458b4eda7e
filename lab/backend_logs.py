"""The backend's structured (JSON) request logs, read back by request id on either target (the
backend writes them: backend/logs.py).

Every backend line is one JSON object carrying the request id the backend echoes in
`X-Request-ID`. Local target: each replica's stdout is a log file the lab created; it is found
through the process listening on the replica's port (its file descriptor 1). Kind: the pods'
logs through the Kubernetes API (`kubectl logs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import psutil

from lab.errors import LabError
from lab.i18n import _
from lab.procs import listener_pid

if TYPE_CHECKING:
    from lab.session import Lab

FIRST_COLUMNS = ["replica", "time", "level", "logger", "msg", "request_id"]


def replica_log(url: str) -> Path:
    """Local target: the file the replica serving `url` writes its stdout (its JSON log) to."""
    pid = listener_pid(url)
    for opened in psutil.Process(pid).open_files():
        if opened.fd == 1:
            return Path(opened.path)
    raise LabError(
        _("The replica at {url} (pid {pid}) does not log to a file.").format(url=url, pid=pid),
        _("Only replicas started by `lab up --target local` do; restart the lab."),
    )


def records(lines: Iterable[str], replica: str) -> list[dict[str, object]]:
    """The JSON objects among `lines` (anything else, e.g. a traceback's lines, is skipped)."""
    out = []
    for line in lines:
        if line.startswith("{"):
            try:
                out.append({"replica": replica, **json.loads(line)})
            except json.JSONDecodeError:
                continue
    return out


def request_logs(env: Lab, request_id: str, tail: int = 2000) -> pd.DataFrame:
    """Every log line of `request_id` on every backend replica (pod on kind), oldest first."""
    found: list[dict[str, object]] = []
    if env.on_cluster:
        for pod in env.k8s.pods("app=backend"):
            found += records(env.k8s.logs(pod.name, tail=tail).splitlines(), pod.name)
    else:
        for url in env.endpoints.backends:
            lines = replica_log(url).read_text(errors="replace").splitlines()[-tail:]
            found += records(lines, url)
    frame = pd.DataFrame([r for r in found if r.get("request_id") == request_id])
    if frame.empty:
        return pd.DataFrame(columns=FIRST_COLUMNS)
    rest = [c for c in frame.columns if c not in FIRST_COLUMNS]
    return frame.reindex(columns=FIRST_COLUMNS + rest).sort_values("time", ignore_index=True)
