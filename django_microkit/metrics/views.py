"""The ``/metrics`` endpoint: a plain Django view, outside Django REST
framework (no authentication, versioning or pagination), its access line
logged at DEBUG as a probe's is.

Callers are let in by address (``ALLOW_NETWORKS``, loopback and private
networks by default) or by a bearer token (``TOKEN``); any other is refused
with a 403 problem (``metrics_forbidden``). The body is rendered by
prometheus_client: the Prometheus text format, or OpenMetrics for a scraper
whose ``Accept`` asks for ``application/openmetrics-text``.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import NamedTuple

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern
from prometheus_client.exposition import choose_encoder

from django_microkit.conf import derived, microkit_settings
from django_microkit.errors import Problem
from django_microkit.errors.handler import get_handler
from django_microkit.health.views import server_mode_route
from django_microkit.logging import access_log_at_debug
from django_microkit.metrics.multiprocess import metrics_registry

__all__ = [
    "async_metrics_view",
    "metrics_allowed",
    "metrics_urlpatterns",
    "metrics_view",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Access(NamedTuple):
    networks: tuple[_Network, ...]
    token: bytes


@derived
def _access() -> _Access:
    section = microkit_settings.METRICS
    networks = tuple(
        ipaddress.ip_network(network, strict=False)
        for network in section["ALLOW_NETWORKS"]
    )
    return _Access(networks, section["TOKEN"].encode())


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether ``request`` may read the metrics: its ``REMOTE_ADDR`` is in
    ``ALLOW_NETWORKS``, or it sends ``Authorization: Bearer <TOKEN>``
    (compared in constant time)."""
    access = _access()
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in network for network in access.networks):
            return True
    if not access.token:
        return False
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), access.token
    )


def _response(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not metrics_allowed(request):
        refusal = Problem(
            403,
            "metrics_forbidden",
            detail="The metrics are not served to this caller.",
        )
        return get_handler(refusal, request).run()
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(metrics_registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics (served under WSGI)."""
    return _response(request)


async def async_metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics (served under ASGI). Rendering reads memory and, in
    multiprocess mode, small local files: it does not leave the loop."""
    return _response(request)


def metrics_urlpatterns() -> list[URLPattern]:
    """The metrics route at ``MICROKIT["METRICS"]["PATH"]``, named
    ``microkit-metrics``; none when metrics are off. Read when the URLconf loads."""
    section = microkit_settings.METRICS
    if not section["ENABLED"]:
        return []
    views = (access_log_at_debug(metrics_view), access_log_at_debug(async_metrics_view))
    return [server_mode_route(section["PATH"], *views, name="microkit-metrics")]
