"""Prometheus RED metrics, correct across the worker processes of a server.

``include("django_microkit.urls")`` serves them at ``/metrics`` (see
:mod:`django_microkit.metrics.views`); the HTTP server and client durations,
the circuit breakers, the health checks, idempotency keys and service-token
refusals are recorded by the code they measure (see
:mod:`django_microkit.metrics.families`); the multiprocess directory is handled
by :mod:`django_microkit.metrics.multiprocess` and the server helpers. See
``docs/observability.md``.
"""

from __future__ import annotations

from django_microkit.metrics.families import (
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PUBLISHED,
    HEALTH_CHECKS,
    IDEMPOTENCY_CONFLICTS,
    IDEMPOTENCY_REPLAYS,
    OTHER_METHOD,
    OUTBOX_LAG,
    SERVICE_AUTH_REFUSALS,
    UNMATCHED_ROUTE,
    observe_breaker,
    observe_client_call,
    observe_health_check,
    observe_request,
)
from django_microkit.metrics.multiprocess import metrics_registry

__all__ = [
    "BREAKER_STATE",
    "BREAKER_TRANSITIONS",
    "EVENTS_CONSUMED",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_PUBLISHED",
    "HEALTH_CHECKS",
    "IDEMPOTENCY_CONFLICTS",
    "IDEMPOTENCY_REPLAYS",
    "OTHER_METHOD",
    "OUTBOX_LAG",
    "SERVICE_AUTH_REFUSALS",
    "UNMATCHED_ROUTE",
    "metrics_registry",
    "observe_breaker",
    "observe_client_call",
    "observe_health_check",
    "observe_request",
]
