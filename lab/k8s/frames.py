"""Notebook views: the package's dataclasses as pandas tables (the only module here that
imports pandas)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields

import pandas as pd

from lab.k8s.objects import PodState

POD_COLUMNS = [f.name for f in fields(PodState)]


def pods_frame(pods: Iterable[PodState]) -> pd.DataFrame:
    """Pods as a table, one row each (the notebooks' view of `NamespaceClient.pod_states`)."""
    return pd.DataFrame([asdict(p) for p in pods], columns=POD_COLUMNS)
