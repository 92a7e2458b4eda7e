"""The load-generator Job: load sent from inside the lab's namespace to the backend's Service.

On a shared cluster the learner cannot reach the backend's Service from outside (ClusterIP only:
the workshop refuses NodePorts), so the load that must go through the Service runs next to it:
a Job whose one pod runs `lab.loadgen_script` (standard library only) in the backend image and
GETs `http://backend:3000/...` at the requested rate. The name resolves to the Service's
ClusterIP and kube-proxy picks a ready endpoint for every connection. The pod reports on its
log (JSON lines); `lab.service_load` reads it back through the API and deletes the Job.

Light on purpose (no pandas): `lab.workshop.capacity` sizes the learner's quota from
`job_manifest`'s pod. Everything a learner's Role needs is already in `lab.rbac.LAB_CALLS`
(jobs: create, patch, delete, list; pods: list; pods/log: get) — the lab adds no right for it.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from pathlib import Path
from typing import Any

from lab.contract import BACKEND

LOADGEN = f"{BACKEND}-loadgen"  # the pods' `app` label (its NetworkPolicy selects it)
LOAD_LABEL = "lab.ironclad/load-generator"  # every Job it creates carries it (value: its name)
SERVICE_URL = f"http://{BACKEND}:3000"  # the backend's ClusterIP Service, by its short DNS name
SCRIPT = Path(__file__).with_name("loadgen_script.py")
GRACE_S = 5  # beyond the request timeout: time to print the report after SIGTERM
RESOURCES = {
    "requests": {"cpu": "50m", "memory": "32Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}


def job_name() -> str:
    """A fresh Job name (`backend-loadgen-<time>-<random>`: two loads never share one)."""
    return f"{LOADGEN}-{time.strftime('%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"


def job_manifest(
    name: str,
    image: str,
    *,
    rate: float,
    requests: int,
    path: str = "/api/items",
    timeout: float = 10.0,
    max_in_flight: int = 1000,
) -> dict[str, Any]:
    """The Job that sends `requests` GETs of `path` at `rate`/s to the backend's Service.

    Hardened like every pod of the lab (Pod Security "restricted": non-root, no privilege
    escalation, no capabilities, RuntimeDefault seccomp, read-only root; no ServiceAccount
    token, no service links), never retried (a second run would send the load twice), bounded
    in time (`activeDeadlineSeconds`) and removed a while after it ends (`ttlSecondsAfterFinished`)
    even if the lab never comes back for it."""
    labels = {"app": LOADGEN, LOAD_LABEL: name}
    seconds = requests / rate
    command = [
        "python",
        "-c",
        f"{SCRIPT.read_text()}\nraise SystemExit(main())\n",  # the program, run
        f"--url={SERVICE_URL}{path}",
        f"--rate={rate:g}",
        f"--requests={requests}",
        f"--timeout={timeout:g}",
        f"--max-in-flight={max_in_flight}",
    ]
    container = {
        "name": "loadgen",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "resources": copy.deepcopy(RESOURCES),  # each manifest its own (a caller may edit it)
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(seconds + timeout) + 120,  # + pull and start
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": math.ceil(timeout) + GRACE_S,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }
