# Exercise 06-p95-per-route: the p95 latency of every /api route, in PromQL.

# `SLI_SELECTOR` selects the backend's /api routes (chaos controls excluded); keep `route` and
# `le` through the sum: histogram_quantile needs the bucket bounds (`le`) of each route.
answer = (
    "histogram_quantile(0.95, sum by (route, le) ("
    f"rate(http_request_duration_seconds_bucket{{{SLI_SELECTOR}}}[1m])))"
)
lab.verify("06-p95-per-route", answer, env=env)
