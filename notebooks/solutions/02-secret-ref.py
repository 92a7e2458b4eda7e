# Exercise 02-secret-ref: the backend's CHAOS_TOKEN, read from a Secret instead of a literal.
answer = {
    "name": "CHAOS_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "chaos-secret", "key": "CHAOS_TOKEN"}},
}
lab.verify("02-secret-ref", answer)
