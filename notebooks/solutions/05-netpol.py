# Exercise 05-netpol: let the new `app: loadgen` pods call backend:3000 by name, nothing else.
loadgen_policy = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "loadgen-egress"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "loadgen"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
                "ports": [{"protocol": "TCP", "port": 3000}],
            },
            {
                "to": [
                    {
                        "namespaceSelector": {},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ],
    },
}
lab.verify("05-netpol", loadgen_policy)
