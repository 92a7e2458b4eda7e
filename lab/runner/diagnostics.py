"""The stack's state after a failure: `lab up`, backends, Prometheus targets/alerts, pods."""

from __future__ import annotations

from lab.errors import LabError
from lab.i18n import _
from lab.identity import Identity
from lab.net import http_status
from lab.prom import Prom
from lab.stack import StackProcess


def diagnostics(stack: StackProcess) -> str:
    """Everything worth reading next to a failing cell; best effort, never raises."""
    lines = [
        (
            _("lab up (target={target}): running")
            if stack.running()
            else _("lab up (target={target}): NOT running")
        ).format(target=stack.target)
    ]
    endpoints = stack.state.endpoints if stack.state else None
    for url in endpoints.backends if endpoints else []:
        status = http_status(url + "/health/ready")
        lines.append(
            _("backend {url} → {status}").format(
                url=f"{url}/health/ready", status=status or _("unreachable")
            )
        )
    if endpoints and endpoints.prometheus:
        lines += prometheus_state(endpoints.prometheus)
    if stack.state is not None and stack.state.identity is not None:
        lines.append(cluster_state(stack.state.identity))
    lines += [_("last lines of the lab up log:"), stack.log_tail(15)]
    return "\n".join(lines)


def prometheus_state(url: str) -> list[str]:
    """One line per scrape target and per alert."""
    prom = Prom(url, timeout=2)
    try:
        targets, alerts = prom.targets(), prom.alerts()
    except LabError as exc:
        return [_("prometheus {url}: unreachable ({problem})").format(url=url, problem=exc.problem)]
    target_line, alert_line = (
        _("prometheus target {url}: {health} {error}"),
        _("alert {name}: {state}"),
    )
    lines = [
        target_line.format(url=t.scrape_url, health=t.health, error=t.last_error)
        for t in targets.itertuples()
    ]
    alert_lines = [alert_line.format(name=a.alertname, state=a.state) for a in alerts.itertuples()]
    return lines + (alert_lines or [_("no alerts")])


def cluster_state(identity: Identity) -> str:
    """Pods, recent events and logs of unready pods of the lab's recorded identity (lab.k8s);
    never hides the original failure."""
    from lab.k8s import NamespaceClient

    try:
        return NamespaceClient.connect(identity).diagnose()
    except Exception as exc:  # diagnostics are best effort: the notebook's error comes first
        return _("cluster diagnostics unavailable: {error}").format(
            error=f"{type(exc).__name__}: {exc}"
        )
