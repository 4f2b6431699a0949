"""Prometheus RED metrics, correct across the worker processes of a server.

- :mod:`~django_microkit.metrics.families`: what is recorded, by the code it
  measures (the HTTP server and client durations, circuit breakers, health
  checks, idempotency keys, service-token refusals, events and the outbox).
- :mod:`~django_microkit.metrics.views`: ``/metrics``, through
  ``include("django_microkit.urls")``.
- :mod:`~django_microkit.metrics.multiprocess`: prometheus_client's
  multiprocess directory, used by the server helpers
  (:mod:`django_microkit.gunicorn`, :mod:`django_microkit.uvicorn`).

This package module imports nothing, so that a server's master process can
prepare the multiprocess directory before prometheus_client is first
imported. See ``docs/observability.md``.
"""
