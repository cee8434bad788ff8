"""Operating a deployment: readiness (``GET /readyz``) and Prometheus metrics (``GET /metrics``) of each process,
and the middleware that measures requests. ``ops.metrics`` is the domain part; ``ops.routes`` the HTTP part."""
