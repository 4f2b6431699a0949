"""The metrics django-microkit records, named as OpenTelemetry's semantic
conventions name them, in Prometheus form.

The HTTP durations are histograms whose buckets come from
``MICROKIT["METRICS"]["BUCKETS"]``: they are made from the settings
(:func:`~django_microkit.conf.derived`) and collected through one collector
of prometheus_client's default registry. The counters and gauges do not depend
on a setting: they are module-level objects of that registry, which the code
recording them calls directly (``EVENTS_PUBLISHED.labels(event_type).inc()``).

Every one is correct across the worker processes of one server when
prometheus_client's multiprocess mode is on (see
:mod:`django_microkit.metrics.multiprocess`): counters and histograms add up,
and the gauges say how their values of several processes combine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from django_microkit.conf import derived, microkit_settings

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

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
    "observe_breaker",
    "observe_client_call",
    "observe_health_check",
    "observe_request",
]

#: ``http_route`` of a request no URL pattern matched (a 404 of the resolver):
#: one value, never the raw path, so a scan of random URLs adds no series.
UNMATCHED_ROUTE = "<unmatched>"

#: ``http_request_method`` of a method that is not one of RFC 9110's or PATCH
#: (OpenTelemetry's ``_OTHER``): a client inventing methods adds no series.
OTHER_METHOD = "_OTHER"

_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)

# --- counters and gauges of the process (prometheus_client's registry) ---------

#: Circuit-breaker state per target service: 0 closed, 1 half-open, 2 open
#: (across worker processes: the highest).
BREAKER_STATE = Gauge(
    "microkit_client_circuit_breaker_state",
    "State of the circuit breaker of a target service: 0 closed, 1 half-open, 2 open.",
    ["peer_service"],
    multiprocess_mode="livemax",
)
#: Changes of a circuit breaker's state, by the state entered.
BREAKER_TRANSITIONS = Counter(
    "microkit_client_circuit_breaker_transitions",
    "Changes of state of the circuit breaker of a target service.",
    ["peer_service", "state"],
)
#: Rounds of each health check, by outcome (``pass``, ``warn``, ``fail``).
HEALTH_CHECKS = Counter(
    "microkit_health_checks",
    "Runs of a health check, by probe, check and status.",
    ["probe", "check", "status"],
)
#: Responses replayed for a repeated ``Idempotency-Key``.
IDEMPOTENCY_REPLAYS = Counter(
    "microkit_idempotency_replays",
    "Stored responses replayed for a repeated Idempotency-Key.",
)
#: Refused ``Idempotency-Key`` requests, by problem code
#: (``idempotency_key_reused``, ``idempotency_key_in_progress``).
IDEMPOTENCY_CONFLICTS = Counter(
    "microkit_idempotency_conflicts",
    "Requests refused for their Idempotency-Key, by problem code.",
    ["code"],
)
#: Service tokens refused, by problem code (``token_expired``…).
SERVICE_AUTH_REFUSALS = Counter(
    "microkit_service_auth_refusals",
    "Service tokens refused, by problem code.",
    ["code"],
)
#: Events the outbox relay published to the broker, by CloudEvents type.
EVENTS_PUBLISHED = Counter(
    "microkit_events_published",
    "Events published to the broker, by event type.",
    ["event_type"],
)
#: Events a consumer handled and acknowledged, by CloudEvents type.
EVENTS_CONSUMED = Counter(
    "microkit_events_consumed",
    "Events consumed and acknowledged, by event type.",
    ["event_type"],
)
#: Events a consumer gave up on and dead-lettered, by CloudEvents type.
EVENTS_DEAD_LETTERED = Counter(
    "microkit_events_dead_lettered",
    "Events dead-lettered, by event type.",
    ["event_type"],
)
#: Age in seconds of the oldest event not yet published (0: the outbox is empty).
OUTBOX_LAG = Gauge(
    "microkit_outbox_lag_seconds",
    "Age of the oldest unpublished outbox event, in seconds.",
    multiprocess_mode="mostrecent",
)

_BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


# --- the histograms, made from the settings --------------------------------------


class _Histograms(NamedTuple):
    server: Histogram
    client: Histogram
    health: Histogram
    # (method, route, status) -> the server histogram's child: labels() once.
    server_children: dict[tuple[str, str, int], Histogram]
    # (service, method, status, error) -> the client histogram's child.
    client_children: dict[tuple[str, str, int | None, str | None], Histogram]


@derived
def _histograms() -> _Histograms | None:
    """The duration histograms, or ``None`` when metrics are off."""
    section = microkit_settings.METRICS
    if not section["ENABLED"]:
        return None
    buckets = tuple(float(bound) for bound in section["BUCKETS"])
    server = Histogram(
        "http_server_request_duration_seconds",
        "Duration of HTTP server requests.",
        ["http_request_method", "http_route", "http_response_status_code"],
        buckets=buckets,
        registry=None,
    )
    client = Histogram(
        "http_client_request_duration_seconds",
        "Duration of calls to other services, retries included.",
        [
            "peer_service",
            "http_request_method",
            "http_response_status_code",
            "error_type",
        ],
        buckets=buckets,
        registry=None,
    )
    health = Histogram(
        "microkit_health_check_duration_seconds",
        "Duration of a health check.",
        ["probe", "check"],
        buckets=buckets,
        registry=None,
    )
    return _Histograms(server, client, health, {}, {})


class _HistogramCollector(Collector):
    """The histograms of the current settings, in prometheus_client's registry."""

    def collect(self) -> Iterable[Metric]:
        histograms = _histograms()
        if histograms is not None:
            for histogram in histograms[:3]:
                yield from histogram.collect()

    def describe(self) -> Iterable[Metric]:
        return ()


REGISTRY.register(_HistogramCollector())


def _method(method: str) -> str:
    return method if method in _METHODS else OTHER_METHOD


def observe_request(
    request: HttpRequest, response: HttpResponseBase, started: float
) -> None:
    """Record a request served since ``started`` (``time.perf_counter()``) in
    ``http_server_request_duration_seconds``, under the route of the URL pattern
    that matched it. The access line's middleware calls it once per request."""
    histograms = _histograms()
    if histograms is None:
        return
    match = request.resolver_match
    key = (
        _method(request.method or ""),
        UNMATCHED_ROUTE if match is None else match.route,
        response.status_code,
    )
    child = _child(histograms.server, histograms.server_children, key, _server_labels)
    child.observe(perf_counter() - started)


def _server_labels(key: tuple[str, str, int]) -> tuple[str, str, int]:
    method, route, status = key
    # A regular expression's anchors (re_path, DRF's routers) say nothing.
    return method, route.removeprefix("^").removesuffix("$"), status


def observe_client_call(
    service: str, method: str, status: int | None, error: str | None, seconds: float
) -> None:
    """Record a call to ``service`` in ``http_client_request_duration_seconds``:
    its answer's status, or the code of the error that ended it (``timeout``,
    ``circuit_open``…) as ``error_type``."""
    histograms = _histograms()
    if histograms is None:
        return
    key = (service, _method(method), status, error)
    child = _child(histograms.client, histograms.client_children, key, _client_labels)
    child.observe(seconds)


def _client_labels(
    key: tuple[str, str, int | None, str | None],
) -> tuple[str, str, str, str]:
    service, method, status, error = key
    return service, method, "" if status is None else str(status), error or ""


_Key = TypeVar("_Key", bound=tuple[Any, ...])


def _child(
    histogram: Histogram,
    children: dict[_Key, Histogram],
    key: _Key,
    labels: Callable[[_Key], Sequence[object]],
) -> Histogram:
    """``histogram``'s child for ``key``, its label values ``labels(key)``:
    prometheus_client's ``labels()`` (a lock, the values checked and turned
    to text) runs the first time a key is seen only."""
    child = children.get(key)
    if child is None:
        child = children[key] = histogram.labels(*labels(key))
    return child


def observe_breaker(service: str, state: str) -> None:
    """Record that the breaker of ``service`` is now in ``state``."""
    BREAKER_STATE.labels(service).set(_BREAKER_VALUES[state])
    BREAKER_TRANSITIONS.labels(service, state).inc()


def observe_health_check(probe: str, check: str, status: str, seconds: float) -> None:
    """Record one run of a health check: its status and its duration."""
    histograms = _histograms()
    if histograms is None:
        return
    HEALTH_CHECKS.labels(probe, check, status).inc()
    histograms.health.labels(probe, check).observe(seconds)
