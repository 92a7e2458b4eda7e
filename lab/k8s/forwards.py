"""Port-forwards through the API server: connect to a port of one of the namespace's pods."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from kubernetes import client

from lab.errors import LabError
from lab.i18n import _
from lab.k8s.client import ExplainingApiClient
from lab.k8s.pods import Pods


class Forwarding(Pods):
    """Sockets to pod ports (`lab.portforward.Forward` listens locally and pipes to them)."""

    @cached_property
    def _forward_core(self) -> client.CoreV1Api:
        """A client of its own for opening port-forwards: `kubernetes.stream.portforward` swaps
        its client's request method for a websocket one while it opens a forward, which would
        send other threads' ordinary calls on a shared client over a websocket."""
        configuration = self.api_client.configuration
        return client.CoreV1Api(ExplainingApiClient(configuration, self.context or ""))

    @cached_property
    def _forward_lock(self) -> threading.Lock:
        return threading.Lock()

    def connect_port(self, pod: str, port: int) -> Any:
        """A connected, blocking socket to `port` of `pod` (kubectl port-forward's tunnel)."""
        from kubernetes.stream import portforward

        def open_forward() -> Any:
            with self._forward_lock:  # one opening at a time on the forwards' own client
                return portforward(
                    self._forward_core.connect_get_namespaced_pod_portforward,
                    pod,
                    self.namespace,
                    ports=str(port),
                )

        sock = self._call(
            _("forward port {port} of pod {pod}").format(port=port, pod=pod), open_forward
        ).socket(port)
        sock.setblocking(True)
        return sock

    def connector(self, selector: str, port: int, slot: int | None = None) -> Callable[[], Any]:
        """Connect to `port` of a pod matching `selector`: slot i always the i-th running pod
        (modulo their number; followed while it runs, ready or not, like kubectl
        port-forward), None the ready pods round-robin like a Service."""
        turn = itertools.count()

        def connect() -> Any:
            names = (
                self.ready_pod_names(selector) if slot is None else self.running_pod_names(selector)
            )
            if not names:
                problem = (
                    _("No ready pod matching {selector} to forward port {port} to in {namespace}.")
                    if slot is None
                    else _(
                        "No running pod matching {selector} to forward port {port} to in "
                        "{namespace}."
                    )
                )
                raise LabError(
                    problem.format(selector=selector, port=port, namespace=self.namespace),
                    _("Check the pods: lab.connect().k8s.pods_frame()."),
                )
            name = names[(next(turn) if slot is None else slot) % len(names)]
            return self.connect_port(name, port)

        return connect
