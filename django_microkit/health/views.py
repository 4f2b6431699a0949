"""The probe endpoints: plain Django views, outside Django REST framework (no
authentication, versioning, throttling) and so outside the OpenAPI schema
unless asked for. Each route picks its sync or async view when the URL is
resolved, so that neither server switches modes on every probe.
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
from django_microkit.health.runner import (
    HealthDocument,
    HealthReport,
    arun_probe,
    run_probe,
)
from django_microkit.logging import access_log_at_debug

__all__ = [
    "HEALTH_JSON",
    "health_urlpatterns",
    "probe_route",
    "server_mode_route",
    "show_details",
]

#: The media type of a health document (draft-inadarei-api-health-check).
HEALTH_JSON = "application/health+json"

_SAFE_METHODS = ("GET", "HEAD")

_SyncView = Callable[..., HttpResponse]
_AsyncView = Callable[..., Awaitable[HttpResponse]]


class _ServerModePattern(URLPattern):
    """A route served by a sync view under WSGI and an async one under ASGI."""

    def __init__(
        self,
        route: str,
        sync_view: _SyncView,
        async_view: _AsyncView,
        name: str | None,
    ) -> None:
        super().__init__(
            RoutePattern(route, name=name, is_endpoint=True), sync_view, name=name
        )
        self.async_callback = async_view

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is None:
            return None
        try:
            # Under ASGI, URLs are resolved on the server's event loop.
            asyncio.get_running_loop()
        except RuntimeError:
            return match
        match.func = self.async_callback
        return match


def server_mode_route(
    route: str, sync_view: _SyncView, async_view: _AsyncView, *, name: str | None
) -> URLPattern:
    """A route for an operational endpoint, such as a probe or service info,
    freed from what guards application views: ``LoginRequiredMiddleware`` (a
    probe has no user) and ``ATOMIC_REQUESTS`` (it would refuse an async view)."""
    for view in (sync_view, async_view):
        login_not_required(view)
        for alias in connections:
            transaction.non_atomic_requests(using=alias)(view)
    return _ServerModePattern(route, sync_view, async_view, name)


def show_details() -> bool:
    """Whether probe answers carry error texts: ``SHOW_DETAILS``, else ``DEBUG``."""
    details = microkit_settings.HEALTH["SHOW_DETAILS"]
    return bool(settings.DEBUG if details is None else details)


def _response(request: HttpRequest, report: HealthReport | None) -> HttpResponse:
    """The probe's answer, or 405 for a method other than GET and HEAD."""
    if report is None:
        response: HttpResponse = HttpResponseNotAllowed(_SAFE_METHODS)
    else:
        body, status = report.render(details=show_details()), report.http_status
        response = HttpResponse(body, content_type=HEALTH_JSON, status=status)
    # A cached "pass" is a lie told to the next load balancer that asks.
    response["Cache-Control"] = "no-store"
    if response.status_code == 503:
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


def _probe_views(probe: str) -> tuple[_SyncView, _AsyncView]:
    def health_view(request: HttpRequest) -> HttpResponse:
        safe = request.method in _SAFE_METHODS
        return _response(request, run_probe(probe, inline=True) if safe else None)

    async def async_health_view(request: HttpRequest) -> HttpResponse:
        safe = request.method in _SAFE_METHODS
        return _response(request, await arun_probe(probe) if safe else None)

    for view in (health_view, async_health_view):
        view.__qualname__ = view.__name__ = f"{view.__name__}_{probe}"
    return health_view, async_health_view


def probe_route(route: str, probe: str, *, name: str | None = None) -> URLPattern:
    """A route of your own answering ``probe`` (``"live"``, ``"ready"`` or
    ``"startup"``), for a caller with a fixed path, such as a load balancer
    that asks ``/healthz``::

        urlpatterns = [
            path("", include("django_microkit.urls")),
            probe_route("healthz", "ready"),
        ]

    It answers as the standard route of that probe does (the same checks and
    document, sync or async as the server is), and is left out of the schema.
    Its access line is logged at DEBUG, as under ``ACCESS_LOG["HEALTH_PATHS"]``.
    """
    if probe not in PROBES:
        raise ValueError(f"{probe!r} is not a probe: use one of {', '.join(PROBES)}.")
    sync_view, async_view = _probe_views(probe)
    return server_mode_route(
        route,
        access_log_at_debug(sync_view),
        access_log_at_debug(async_view),
        name=name,
    )


def health_urlpatterns() -> list[URLPattern]:
    """The probe routes, named ``microkit-health-<probe>``, under
    ``MICROKIT["HEALTH"]["URL_PREFIX"]`` as it is when the URLconf loads."""
    section = microkit_settings.HEALTH
    patterns: list[URLPattern] = []
    for probe in PROBES:
        route = f"{section['URL_PREFIX']}{probe}"
        pattern = probe_route(route, probe, name=f"microkit-health-{probe}")
        if section["INCLUDE_IN_SCHEMA"]:
            _document(pattern.callback, probe)
        patterns.append(pattern)
    return patterns


# --- OpenAPI, when asked for -----------------------------------------------------

_SUMMARIES = {
    "live": "Liveness: the process can serve requests.",
    "ready": "Readiness: the service's dependencies are usable.",
    "startup": "Startup: the service has finished starting.",
}


def _document(view: Any, probe: str) -> None:
    """Let drf-spectacular document ``view`` as a DRF view would be."""
    from drf_spectacular.plumbing import resolve_type_hint
    from drf_spectacular.utils import OpenApiResponse, extend_schema
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    # The schema of the TypedDict, with the required members in the draft's order.
    schema = {
        **resolve_type_hint(HealthDocument),
        "required": ["status", "checks"],
    }

    class HealthSchema(APIView):
        versioning_class = None
        problem_statuses: list[int] = []  # probes answer health documents

        @extend_schema(
            operation_id=f"health_{probe}",
            summary=_SUMMARIES[probe],
            tags=["health"],
            auth=[],
            responses={
                (200, HEALTH_JSON): OpenApiResponse(schema, "Status pass or warn."),
                (503, HEALTH_JSON): OpenApiResponse(schema, "Status fail."),
            },
        )
        def get(self, request: Request) -> Response:  # pragma: no cover
            raise NotImplementedError

    view.cls, view.initkwargs = HealthSchema, {}
