"""Each caller's rights in the fake Kubernetes API server (tests/plugins/fake_kube_api.py): RBAC
(`lab.rbac`'s evaluator), its escalation check on Roles and RoleBindings, a
ValidatingAdmissionPolicy evaluated with cel-python, and the quotas on NodePorts and
LoadBalancers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.rbac import Request, allows, covers


class Admission:
    """A ValidatingAdmissionPolicy and its binding, evaluated as the API server would: for
    CREATE/UPDATE of a resource its rules match, in a namespace its binding's namespaceSelector
    (matchLabels) selects, every validation's CEL (compiled and run by cel-python) must be true;
    an evaluation error refuses too (failurePolicy Fail)."""

    def __init__(self, policy: dict[str, Any], binding: dict[str, Any]) -> None:
        import celpy

        self.celpy = celpy
        env = celpy.Environment()
        spec = policy["spec"]
        self.validations = [
            (env.program(env.compile(v["expression"])), v["message"]) for v in spec["validations"]
        ]
        self.rules = spec["matchConstraints"]["resourceRules"]
        self.selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]

    def matches(self, group: str, resource: str, operation: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and operation in r["operations"]
            for r in self.rules
        )

    def refusal(
        self,
        group: str,
        resource: str,
        operation: str,
        obj: dict[str, Any],
        namespace: dict[str, Any] | None,
    ) -> str | None:
        """Why the policy refuses `obj` (None: admitted, or not the policy's business)."""
        labels = (namespace or {}).get("metadata", {}).get("labels", {})
        selected = namespace is not None and all(
            labels.get(k) == v for k, v in self.selector.items()
        )
        if not selected or not self.matches(group, resource, operation):
            return None
        activation = {
            "object": self.celpy.json_to_cel(obj),
            "request": self.celpy.json_to_cel(
                {
                    "operation": operation,
                    "resource": {"group": group, "version": "v1", "resource": resource},
                }
            ),
            "namespaceObject": self.celpy.json_to_cel(namespace),
        }
        for program, message in self.validations:
            try:
                verdict = program.evaluate(activation)
            except self.celpy.CELEvalError as exc:
                return f"admission: evaluation error ({exc})"
            if isinstance(verdict, self.celpy.CELEvalError) or not bool(verdict):
                return f"admission: {message}"
        return None


@dataclass
class Gate:
    """What the API server decides for one caller holding Roles (namespace -> `rules:` list):
    RBAC (`lab.rbac.allows`), RBAC's escalation check on Roles and RoleBindings
    (`lab.rbac.covers`), the admission policy, and quotas' `services.nodeports` /
    `services.loadbalancers`. `None` from `refusal` means allowed; an allowed Role is kept
    (a RoleBinding's escalation check reads the Role it binds)."""

    roles: dict[str, list[dict[str, Any]]]
    admission: Admission | None
    namespaces: dict[str, dict[str, Any]]  # name -> Namespace object (namespaceObject)
    quotas: dict[str, dict[str, str]] = field(default_factory=dict)  # namespace -> spec.hard
    role_store: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def refusal(self, request: Request, body: dict[str, Any] | None = None) -> str | None:
        if not allows(self.roles, request):
            return "RBAC: no rule grants it"
        writes = request.verb in ("create", "update", "patch")
        if not writes or body is None:
            return None
        held = self.roles.get(request.namespace or "", [])
        if request.resource == "roles" and not covers(held, body.get("rules", [])):
            return "RBAC escalation check: the Role grants more than the caller holds"
        if request.resource == "rolebindings":
            ref = body.get("roleRef", {})
            granted = self.role_store.get((request.namespace or "", ref.get("name", "")))
            if ref.get("kind") != "Role" or granted is None or not covers(held, granted):
                return "RBAC escalation check: the caller does not hold the bound Role's rules"
        if self.admission is not None:
            namespace = self.namespaces.get(request.namespace or "")
            for operation in ("CREATE", "UPDATE") if request.verb == "patch" else ("CREATE",):
                refused = self.admission.refusal(
                    request.group, request.resource, operation, body, namespace
                )
                if refused:
                    return refused
        if request.resource == "services":
            kind = body.get("spec", {}).get("type", "ClusterIP")
            key = {"NodePort": "services.nodeports", "LoadBalancer": "services.loadbalancers"}
            hard = self.quotas.get(request.namespace or "", {})
            if kind in key and hard.get(key[kind]) == "0":
                return f"quota: {key[kind]}=0"
            if kind == "LoadBalancer" and hard.get("services.nodeports") == "0":
                return "quota: a LoadBalancer allocates node ports too (services.nodeports=0)"
        if request.resource == "roles":
            self.role_store[(request.namespace or "", request.name or "")] = body["rules"]
        return None

    @classmethod
    def of_learner(cls, objects: list[dict[str, Any]], learner: str) -> Gate:
        """The gate of `learner`'s ServiceAccount in the workshop `objects` provision made:
        the Roles bound to it, the workshop's policy, namespaces and quotas."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            by_kind.setdefault(obj["kind"], []).append(obj)
        store = {
            (r["metadata"]["namespace"], r["metadata"]["name"]): r["rules"] for r in by_kind["Role"]
        }
        roles: dict[str, list[dict[str, Any]]] = {}
        for binding in by_kind["RoleBinding"]:
            subject = {"kind": "ServiceAccount", "name": "learner", "namespace": learner}
            if subject in binding["subjects"]:
                namespace = binding["metadata"]["namespace"]
                roles.setdefault(namespace, []).extend(
                    store[(namespace, binding["roleRef"]["name"])]
                )
        namespaces = {n["metadata"]["name"]: n for n in by_kind["Namespace"]}
        labels = namespaces[learner]["metadata"].get("labels", {})
        (policy_binding,) = [  # the one binding that selects the learner's namespace
            b
            for b in by_kind["ValidatingAdmissionPolicyBinding"]
            if b["spec"]["matchResources"]["namespaceSelector"]["matchLabels"].items()
            <= labels.items()
        ]
        (policy,) = [
            p
            for p in by_kind["ValidatingAdmissionPolicy"]
            if p["metadata"]["name"] == policy_binding["spec"]["policyName"]
        ]
        return cls(
            roles,
            Admission(policy, policy_binding),
            namespaces,
            {
                q["metadata"]["namespace"]: q["spec"]["hard"]
                for q in by_kind.get("ResourceQuota", [])
            },
            store,
        )
