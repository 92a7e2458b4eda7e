"""PromQL to tidy pandas DataFrames, and waits on queries and alerts (prometheus-api-client)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import requests
from prometheus_api_client import MetricRangeDataFrame, MetricSnapshotDataFrame, PrometheusConnect
from urllib3.util.retry import Retry

from lab.errors import PrometheusError
from lab.i18n import _, translate
from lab.waits import poll

ALERT_COLUMNS = ["alertname", "state", "active_at", "value"]
TARGET_COLUMNS = ["job", "instance", "health", "last_error", "scrape_url", "last_scrape"]
RULE_COLUMNS = ["alert", "for_s", "severity", "summary", "runbook"]
ALERT_STATES = ("pending", "firing", "inactive")


def samples_frame(result: list[Any]) -> pd.DataFrame:
    """An instant-vector result as a DataFrame: one row per series, label columns + `value`.

    A scalar result (`[time, "value"]`, e.g. from `time()`) becomes one row with `value`.
    """
    if not result:
        return pd.DataFrame(columns=["value"])
    if not isinstance(result[0], dict):
        return pd.DataFrame({"value": [float(result[1])]})
    frame = pd.DataFrame(MetricSnapshotDataFrame(result, ts_as_datetime=False))
    return frame.drop(columns="timestamp").reset_index(drop=True)


def range_frame(result: list[dict[str, Any]]) -> pd.DataFrame:
    """A range-query result as a long DataFrame: `timestamp` (UTC) + label columns + `value`."""
    if not result:
        return pd.DataFrame(columns=["timestamp", "value"])
    with warnings.catch_warnings():  # the library still calls set_index(inplace=True)
        warnings.filterwarnings("ignore", message="The inplace keyword")
        frame = pd.DataFrame(MetricRangeDataFrame(result, ts_as_datetime=False)).reset_index()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    return frame


def alerts_frame(alerts: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """`/api/v1/alerts` as a DataFrame: alertname, state, active_at, value, then the labels."""
    rows = [
        {
            "alertname": alert["labels"].get("alertname", ""),
            "state": alert["state"],
            "active_at": pd.Timestamp(alert["activeAt"]),
            "value": float(alert["value"]),
            **{k: v for k, v in alert["labels"].items() if k != "alertname"},
            "summary": alert.get("annotations", {}).get("summary", ""),
        }
        for alert in alerts
    ]
    return pd.DataFrame(rows, columns=None if rows else ALERT_COLUMNS)


def alert_rules_frame(groups: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """`/api/v1/rules?type=alert` as a DataFrame: one row per alerting rule with its `for:`
    (seconds), severity, summary and runbook_url."""
    rows = [
        [
            rule["name"],
            float(rule.get("duration", 0)),
            rule.get("labels", {}).get("severity"),
            rule.get("annotations", {}).get("summary", ""),
            rule.get("annotations", {}).get("runbook_url", ""),
        ]
        for group in groups
        for rule in group["rules"]
    ]
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def targets_frame(targets: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Active scrape targets: job, instance, health, last_error, scrape_url, last_scrape."""
    rows = [
        [
            t["labels"].get("job", t.get("scrapePool", "")),
            t["labels"].get("instance", ""),
            t["health"],
            t.get("lastError", ""),
            t.get("scrapeUrl", ""),
            pd.Timestamp(t["lastScrape"]) if t.get("lastScrape") else pd.NaT,
        ]
        for t in targets
    ]
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def alert_state(alerts: pd.DataFrame, name: str) -> str:
    """The state of alert `name` in an alerts() frame: firing > pending > inactive."""
    states = set(alerts.loc[alerts["alertname"] == name, "state"])
    return next((s for s in ("firing", "pending") if s in states), "inactive")


class Prom:
    """A Prometheus server: `Prom("http://127.0.0.1:9090").query("up")`."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        retry = Retry(total=2, backoff_factor=0.1, status_forcelist=[502, 503, 504])
        self._client = PrometheusConnect(
            self.url, retry=retry, session=self._session, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"Prom({self.url!r})"

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except requests.RequestException as exc:
            raise PrometheusError(
                _("Prometheus at {url} did not answer ({what}): {error}").format(
                    url=self.url, what=what, error=exc
                ),
                _(
                    "Is the lab running? `lab.connect()` starts or attaches to it; on kind, the "
                    "port-forward may have dropped (connect again)."
                ),
            ) from exc
        except Exception as exc:  # prometheus-api-client raises a bare Exception subclass
            raise PrometheusError(
                _("Prometheus refused {what}: {error}").format(what=what, error=exc),
                _("Fix the PromQL (try it in the Prometheus UI first)."),
            ) from exc

    def query(self, q: str) -> pd.DataFrame:
        """Instant query: one row per series, label columns + `value`."""
        return samples_frame(
            self._call(
                _("the query {query}").format(query=repr(q)), lambda: self._client.custom_query(q)
            )
        )

    def query_range(
        self,
        q: str,
        start: datetime | timedelta = timedelta(minutes=10),
        end: datetime | None = None,
        step: str | float = "15s",
    ) -> pd.DataFrame:
        """Range query: `timestamp` + labels + `value`; `start` may be a span before `end`."""
        end = end or datetime.now(UTC)
        begin = end - start if isinstance(start, timedelta) else start
        return range_frame(
            self._call(
                _("the range query {query}").format(query=repr(q)),
                lambda: self._client.custom_query_range(q, begin, end, str(step)),
            )
        )

    def value(self, q: str) -> float | None:
        """The single value of a query that returns one series (None when it returns none)."""
        frame = self.query(q)
        if len(frame) > 1:
            raise PrometheusError(
                _("{query} returned {count} series, expected one.").format(
                    query=repr(q), count=len(frame)
                ),
                _("Aggregate it, e.g. wrap it in sum(...)."),
            )
        return None if frame.empty else float(frame["value"].iloc[0])

    def alerts(self) -> pd.DataFrame:
        """Active alerts (pending and firing): alertname, state, active_at, value, labels."""

        def fetch() -> Any:
            response = self._session.get(f"{self.url}/api/v1/alerts", timeout=self.timeout)
            response.raise_for_status()
            return response.json()["data"]["alerts"]

        return alerts_frame(self._call(_("the alerts"), fetch))

    def alert_rules(self) -> pd.DataFrame:
        """The alerting rules Prometheus loaded (`alert_rules_frame`), firing or not."""

        def fetch() -> Any:
            response = self._session.get(
                f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=self.timeout
            )
            response.raise_for_status()
            return response.json()["data"]["groups"]

        return alert_rules_frame(self._call(_("the alerting rules"), fetch))

    def targets(self) -> pd.DataFrame:
        """Active scrape targets with their health and last scrape error."""
        data = self._call(_("the targets"), lambda: self._client.get_targets(state="active"))
        return targets_frame(data["activeTargets"])

    def wait_for_alert(
        self,
        name: str,
        state: str = "firing",
        timeout: float = 300.0,
        *,
        interval: float = 1.0,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Wait until alert `name` is in `state` (pending, firing or inactive); return its rows.

        "pending" also accepts "firing" (the alert went through pending between two polls).
        """
        if state not in ALERT_STATES:
            raise ValueError(f"state must be one of {ALERT_STATES}, not {state!r}")
        accepted = {"pending": {"pending", "firing"}}.get(state, {state})
        last = [_("not polled yet")]

        def probe() -> _Truthy | None:
            alerts = self.alerts()
            seen = alert_state(alerts, name)
            last[0] = _("{alert} was {state}").format(alert=name, state=seen)
            rows = alerts[alerts["alertname"] == name].reset_index(drop=True)
            return _Truthy(rows) if seen in accepted else None

        return self._wait(
            probe,
            last,
            what=_("alert {alert} to be {state}").format(alert=name, state=state),
            timeout=timeout,
            interval=interval,
            progress=progress,
            next_step=_(
                "Check the rule's expression in the Prometheus UI ({url}/alerts), that the "
                "targets are up (`prom.targets()`), that traffic flows and that the fault is "
                "still injected (`chaos.status()`); alerts need their `for:` time."
            ).format(url=self.url),
        )

    def wait_until(
        self,
        q: str,
        predicate: Callable[[pd.DataFrame], bool],
        timeout: float = 120.0,
        *,
        what: str | None = None,
        interval: float = 1.0,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Poll query `q` until `predicate(frame)` holds; return that frame."""
        last = [_("not polled yet")]

        def probe() -> _Truthy | None:
            frame = self.query(q)
            last[0] = f"{q} →\n" + (
                frame.to_string(max_rows=10) if not frame.empty else _("no series")
            )
            return _Truthy(frame) if predicate(frame) else None

        return self._wait(
            probe,
            last,
            what=translate(what)
            if what
            else _("{query} to satisfy the condition").format(query=repr(q)),
            timeout=timeout,
            interval=interval,
            progress=progress,
            next_step=_(
                "Run the query yourself (`prom.query({query})`) and compare with the condition; "
                "check `prom.targets()` for scrape errors and that traffic flows."
            ).format(query=repr(q)),
        )

    def _wait(
        self,
        probe: Callable[[], _Truthy | None],
        last: list[str],
        *,
        what: str,
        timeout: float,
        interval: float,
        progress: bool,
        next_step: str,
    ) -> pd.DataFrame:
        """poll() with a progress bar; an unreachable Prometheus counts as "not yet"."""

        def tolerant() -> _Truthy | None:
            try:
                return probe()
            except PrometheusError as exc:
                if not isinstance(exc.__cause__, requests.RequestException):
                    raise  # a refused query will not get better by waiting
                last[0] = exc.problem
                return None

        found = poll(
            tolerant,
            what=what,
            timeout=timeout,
            interval=interval,
            progress=progress,
            diagnose=lambda: last[0],
            next_step=next_step,
        )
        return found.frame


class _Truthy:
    """Wraps a DataFrame (whose truth value is ambiguous) as a truthy poll result."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
