"""The probe endpoints: ``application/health+json``, 200 or 503, never cached.

They are plain Django views, outside Django REST framework: no authentication,
permissions, versioning, pagination or throttling applies, and they are not in
the OpenAPI schema unless ``MICROKIT["HEALTH"]["INCLUDE_IN_SCHEMA"]`` is set.

Each route has a sync and an async view, and the route picks the one that
matches the server when the URL is resolved: the async view when resolution
runs on an event loop (ASGI), the sync view otherwise (WSGI). So neither
server pays to switch modes on every probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern
from django.urls.resolvers import ResolverMatch, RoutePattern
from django.utils.log import log_response

from django_microkit.conf import microkit_settings
from django_microkit.health._registry import PROBES
from django_microkit.health.runner import HealthReport, arun_probe, run_probe

__all__ = ["HEALTH_JSON", "health_urlpatterns", "server_mode_route", "show_details"]

#: The media type of a health document (draft-inadarei-api-health-check).
HEALTH_JSON = "application/health+json"

_SAFE_METHODS = ("GET", "HEAD")

_SyncView = Callable[..., HttpResponse]
_AsyncView = Callable[..., Awaitable[HttpResponse]]


class _ServerModePattern(URLPattern):
    """A route served by a sync view under WSGI and an async one under ASGI."""

    def __init__(
        self, route: str, sync_view: _SyncView, async_view: _AsyncView, name: str
    ) -> None:
        super().__init__(
            RoutePattern(route, name=name, is_endpoint=True), sync_view, name=name
        )
        self.async_callback = async_view

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is not None and _on_event_loop():
            match.func = self.async_callback
        return match


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def server_mode_route(
    route: str, sync_view: _SyncView, async_view: _AsyncView, *, name: str
) -> URLPattern:
    """A route for an operational endpoint, such as a probe or service info.

    ``sync_view`` serves it under WSGI and ``async_view`` under ASGI, chosen
    when the URL is resolved, so that neither server switches modes per
    request. Both views are freed from what guards application views:
    ``LoginRequiredMiddleware`` (a probe has no user) and ``ATOMIC_REQUESTS``
    (the checks use their own connections, and it would refuse an async view).
    """
    for view in (sync_view, async_view):
        login_not_required(view)
        for alias in connections:
            transaction.non_atomic_requests(using=alias)(view)
    return _ServerModePattern(route, sync_view, async_view, name)


def show_details() -> bool:
    """Whether probe answers carry error texts: ``SHOW_DETAILS``, else ``DEBUG``."""
    details = microkit_settings.HEALTH["SHOW_DETAILS"]
    return bool(settings.DEBUG if details is None else details)


def _health_response(request: HttpRequest, report: HealthReport) -> HttpResponse:
    response = HttpResponse(
        report.render(details=show_details()),
        content_type=HEALTH_JSON,
        status=report.http_status,
    )
    # A cached "pass" is a lie told to the next load balancer that asks.
    response["Cache-Control"] = "no-store"
    if report.http_status >= 500:
        # Django would log every failing probe as an error (and alert on it);
        # a check's change of status is logged once, by the runner.
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            level="debug",
        )
    return response


def _not_allowed() -> HttpResponse:
    response = HttpResponseNotAllowed(_SAFE_METHODS)
    response["Cache-Control"] = "no-store"
    return response


def _probe_views(probe: str) -> tuple[_SyncView, _AsyncView]:
    def health_view(request: HttpRequest) -> HttpResponse:
        if request.method not in _SAFE_METHODS:
            return _not_allowed()
        return _health_response(request, run_probe(probe))

    async def async_health_view(request: HttpRequest) -> HttpResponse:
        if request.method not in _SAFE_METHODS:
            return _not_allowed()
        return _health_response(request, await arun_probe(probe))

    for view in (health_view, async_health_view):
        view.__qualname__ = view.__name__ = f"{view.__name__}_{probe}"
    return health_view, async_health_view


def health_urlpatterns() -> list[URLPattern]:
    """The probe routes, under ``MICROKIT["HEALTH"]["URL_PREFIX"]``.

    Read when the URLconf is loaded: ``health/live``, ``health/ready`` and
    ``health/startup`` by default, named ``microkit-health-<probe>``.
    """
    section = microkit_settings.HEALTH
    patterns: list[URLPattern] = []
    for probe in PROBES:
        sync_view, async_view = _probe_views(probe)
        if section["INCLUDE_IN_SCHEMA"]:
            _document(sync_view, probe)
        route, name = f"{section['URL_PREFIX']}{probe}", f"microkit-health-{probe}"
        patterns.append(server_mode_route(route, sync_view, async_view, name=name))
    return patterns


# --- OpenAPI, when asked for -----------------------------------------------------

_SUMMARIES = {
    "live": "Liveness: the process can serve requests.",
    "ready": "Readiness: the service's dependencies are usable.",
    "startup": "Startup: the service has finished starting.",
}

_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
        "componentType": {"type": "string"},
        "observedValue": {"type": "number"},
        "observedUnit": {"type": "string", "example": "ms"},
        "time": {"type": "string", "format": "date-time"},
        "output": {"type": "string"},
    },
    "required": ["status"],
}

_DOCUMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
        "serviceId": {"type": "string"},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": _ENTRY_SCHEMA},
        },
    },
    "required": ["status", "checks"],
}


def _document(view: Any, probe: str) -> None:
    """Let drf-spectacular document ``view`` as a DRF view would be."""
    from drf_spectacular.utils import OpenApiResponse, extend_schema
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    @extend_schema(
        operation_id=f"health_{probe}",
        summary=_SUMMARIES[probe],
        tags=["health"],
        auth=[],
        responses={
            (200, HEALTH_JSON): OpenApiResponse(
                _DOCUMENT_SCHEMA, description="Status pass or warn."
            ),
            (503, HEALTH_JSON): OpenApiResponse(
                _DOCUMENT_SCHEMA, description="Status fail."
            ),
        },
    )
    def get(self: APIView, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError

    view.cls = type(
        f"Health{probe.title()}Schema",
        (APIView,),
        {
            "get": get,
            "authentication_classes": [],
            "permission_classes": [],
            "throttle_classes": [],
            "versioning_class": None,
            "pagination_class": None,
            # Probes answer health documents, never problems.
            "problem_statuses": [],
        },
    )
    view.initkwargs = {}
