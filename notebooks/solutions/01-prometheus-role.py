# Exercise 01-prometheus-role: write Prometheus' RBAC (its kind and rules), least privilege.
answer = {
    "kind": "Role",  # namespaced: discovery reads pods in this one namespace only
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
}
lab.verify("01-prometheus-role", answer)
