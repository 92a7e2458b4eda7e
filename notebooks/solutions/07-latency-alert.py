# Exercise 07-latency-alert: chaos parameters that fire HighLatency and nothing about availability.

# 600 ms puts every request above the 500 ms threshold (p95 > 0.5 s); no injected errors, so
# neither HighErrorRate (> 5 %) nor AvailabilityBurnRate (> 1.44 % at 14.4x) can wake up.
answer = {"latency_ms": 600, "error_ratio": 0.0}
lab.verify("07-latency-alert", answer, env=env, timeout=ALERT_TIMEOUT_S)
