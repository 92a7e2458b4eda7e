"""The stack's credentials: the PostgreSQL password, the chaos token, Grafana's admin password.

Never committed: `lab.manifests.render` writes them into the Secrets it renders (a kustomize
`secretGenerator` in the generated overlay), freshly generated unless the caller passes the
values a running stack already has. `lab up --target kind|cluster` and `reset` read the live
Secrets first (`lab.targets.kube.live_credentials`) and keep them, so a stack keeps its own
credentials for its whole life — PostgreSQL took its password when its volume was initialised —
and two stacks (two learners on one cluster) never share one. The local target generates its
chaos token the same way and starts PostgreSQL with a password of its own.
"""

from __future__ import annotations

import secrets as tokens
from collections.abc import Mapping

from lab.contract import CHAOS_SECRET

Credentials = dict[str, dict[str, str]]  # Secret name -> its data (plain text)

# Secret name -> the keys generated per stack (the pods read them by these names).
GENERATED: dict[str, tuple[str, ...]] = {
    "postgres-secret": ("POSTGRES_PASSWORD",),
    CHAOS_SECRET: ("CHAOS_TOKEN",),
    "grafana-admin": ("GF_SECURITY_ADMIN_PASSWORD",),
}
FIXED: dict[str, dict[str, str]] = {"grafana-admin": {"GF_SECURITY_ADMIN_USER": "admin"}}
# Which Secrets a render of the app alone holds (the monitoring component adds Grafana's).
APP_SECRETS = ("postgres-secret", CHAOS_SECRET)
TOKEN_BYTES = 24  # 32 URL-safe characters: no quoting needed in env vars or literals


def generate(existing: Mapping[str, Mapping[str, str]] | None = None) -> Credentials:
    """Every credential Secret's data: the values in `existing` kept, the missing ones new."""
    existing = existing or {}
    out: Credentials = {}
    for name, keys in GENERATED.items():
        kept = existing.get(name, {})
        data = dict(FIXED.get(name, {}))
        for key in keys:
            data[key] = kept.get(key) or tokens.token_urlsafe(TOKEN_BYTES)
        out[name] = data
    return out


def generator(credentials: Credentials, names: tuple[str, ...]) -> list[dict[str, object]]:
    """kustomize `secretGenerator` entries for the Secrets `names` (fixed names, no hash
    suffix: the pods and `lab` read them by name)."""
    return [
        {
            "name": name,
            "literals": [f"{k}={v}" for k, v in sorted(credentials[name].items())],
            "options": {"disableNameSuffixHash": True},
        }
        for name in names
    ]
