"""What every lint rule shares: the `Finding` it reports and the `LintRun` it reads the objects
from and adds findings to."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.manifests import Obj, ident
from lab.pod_templates import Pod, pods, selector_matches


@dataclass(frozen=True)
class Finding:
    """One broken rule: which object, which field, which rule, and what is wrong."""

    kind: str
    name: str
    field: str
    rule: str
    message: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} {self.field}: {self.message} [rule: {self.rule}]"


@dataclass
class LintRun:
    """One run of the rules over one set of objects (with their pod templates), collecting
    findings."""

    objects: Sequence[Obj]
    metrics_paths: Sequence[str]
    findings: list[Finding] = field(default_factory=list)
    pods: list[Pod] = field(init=False)

    def __post_init__(self) -> None:
        self.pods = pods(self.objects)

    def add(self, obj: Obj, field_: str, rule: str, message: str) -> None:
        kind, namespace, name = ident(obj)
        self.findings.append(Finding(kind, name, field_, rule, message, namespace))

    def of_kind(self, kind: str) -> Iterator[Obj]:
        return (o for o in self.objects if o.get("kind") == kind)

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        return next((o for o in self.of_kind(kind) if ident(o)[1:] == (namespace, name)), None)

    def selected(self, namespace: str, selector: Mapping[str, Any] | None) -> list[Pod]:
        return [
            p
            for p in self.pods
            if p.namespace == namespace and selector_matches(selector, p.labels)
        ]


def compact(value: Any) -> str:
    """`value` as one line of flow-style YAML (for messages)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def port_list(pod: Pod) -> str:
    """The container ports of `pod`, named where they have names (for messages)."""
    named = ", ".join(f"{k}={v}" for k, v in pod.ports.items())
    return named or ", ".join(map(str, sorted(pod.port_numbers))) or "none"
