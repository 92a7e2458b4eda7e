"""Notebook views: the package's dataclasses as pandas tables, one row each (the only module of
`lab.k8s` that imports pandas; `NamespaceClient`'s `*_frame()` methods import it when called,
so `lab up` never loads pandas)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

import pandas as pd

from lab.k8s.objects import Event, Node, PodState, RolloutSample


def frame(rows: Iterable[Any], kind: type) -> pd.DataFrame:
    """Dataclass instances of `kind` as a table, its fields as the columns (also when empty)."""
    return pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(kind)])


def pods_frame(pods: Iterable[PodState]) -> pd.DataFrame:
    """Pods as a table (`NamespaceClient.pods_frame`)."""
    return frame(pods, PodState)


def events_frame(events: Iterable[Event]) -> pd.DataFrame:
    """Events as a table, oldest first (`NamespaceClient.events_frame`)."""
    return frame(events, Event)


def nodes_frame(nodes: Iterable[Node]) -> pd.DataFrame:
    """Nodes as a table (`NamespaceClient.nodes_frame`)."""
    return frame(nodes, Node)


def timeline_frame(samples: Iterable[RolloutSample]) -> pd.DataFrame:
    """A rollout's samples as a table, `t` in seconds (what `lab.plots.rollout_timeline` draws)."""
    return frame(samples, RolloutSample)
