"""One backend replica's own `/metrics`, read directly: the numbers Prometheus would scrape,
for lessons that run before Prometheus does (05's CPU, 03's circuit breaker) and on any target."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from lab.errors import LabError
from lab.i18n import _, ngettext


def samples(url: str, timeout: float = 2.0) -> dict[str, float]:
    """The unlabelled samples of `url`/metrics by name (`process_cpu_seconds_total`,
    `circuit_breaker_open`, ...); labelled samples are left out."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=timeout) as response:  # noqa: S310
            text = response.read().decode()
    except OSError as exc:
        raise LabError(
            _("Could not read {url}/metrics: {error}.").format(url=url, error=exc),
            _("Is the replica running? `ironclad-lab status` lists the lab's backends."),
        ) from exc
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def value(url: str, name: str, timeout: float = 2.0) -> float:
    """One unlabelled sample of `url`/metrics (LabError naming the metric when it is absent)."""
    found = samples(url, timeout)
    if name not in found:
        raise LabError(
            _("{url}/metrics has no unlabelled sample {name}.").format(url=url, name=repr(name)),
            ngettext(
                "Check the name; the replica exports {count} such sample.",
                "Check the name; the replica exports {count} such samples.",
                len(found),
            ).format(count=len(found)),
        )
    return found[name]
