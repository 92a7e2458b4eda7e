# Exercise 04-strategy: updates that never lower capacity, with at most one extra pod.
rolling_update = {"maxUnavailable": 0, "maxSurge": 1}
lab.verify("04-strategy", rolling_update)
