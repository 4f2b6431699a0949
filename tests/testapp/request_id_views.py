"""Views for the request-ID, logging and Sentry tests (under /request-id/)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import structlog
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.utils.functional import SimpleLazyObject
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_microkit.errors import Problem
from django_microkit.request_id import (
    get_request_id,
    get_trace_context,
    outgoing_headers,
)

third_party = logging.getLogger("thirdparty.client")


def _state(request: HttpRequest) -> dict[str, Any]:
    trace = get_trace_context()
    return {
        "request_id": get_request_id(),
        "request_attribute": request.request_id,  # type: ignore[attr-defined]
        "trace_id": trace.trace_id if trace else None,
        "parent_id": trace.parent_id if trace else None,
        "sampled": trace.sampled if trace else None,
        "random": trace.random if trace else None,
        "tracestate": trace.tracestate if trace else None,
        "same_trace_object": request.trace_context is trace,  # type: ignore[attr-defined]
        "outgoing": outgoing_headers(),
    }


def echo(request: HttpRequest) -> JsonResponse:
    """Logs through structlog and a stdlib logger, answers with the IDs seen."""
    marker = request.GET.get("marker", "")
    structlog.contextvars.bind_contextvars(bound_in_view=marker)
    structlog.get_logger("tests.app").info("in view", marker=marker)
    if "sleep" in request.GET:
        time.sleep(float(request.GET["sleep"]))
    third_party.warning("third party says %s", marker)
    return JsonResponse(_state(request))


async def async_echo(request: HttpRequest) -> JsonResponse:
    marker = request.GET.get("marker", "")
    structlog.contextvars.bind_contextvars(bound_in_view=marker)
    structlog.get_logger("tests.app").info("in view", marker=marker)
    await asyncio.sleep(float(request.GET.get("sleep", "0")))
    third_party.warning("third party says %s", marker)
    return JsonResponse(_state(request))


def fail(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("boom in view")


def not_found(request: HttpRequest) -> JsonResponse:
    raise Http404("no such thing")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """Logs while the body is sent, after the middleware has returned."""

    def body() -> Iterator[bytes]:
        structlog.get_logger("tests.app").info("streaming", seen=get_request_id())
        yield b"streamed"

    return StreamingHttpResponse(body())


def problem(request: HttpRequest, status: int, marker: str) -> JsonResponse:
    """A problem answered by ProblemMiddleware: Django logs it (``django.request``)
    only after the whole middleware chain has returned."""
    raise Problem(status, "unavailable")


def lazy_user(request: HttpRequest) -> JsonResponse:
    """A ``request.user`` the way AuthenticationMiddleware sets it: lazy."""
    evaluated: list[bool] = []

    def load() -> object:
        evaluated.append(True)
        return type("Principal", (), {"service_name": "should-not-appear"})()

    request.user = SimpleLazyObject(load)  # type: ignore[assignment]
    if "evaluate" in request.GET:
        request.user.service_name  # type: ignore[union-attr]  # noqa: B018
    response = JsonResponse({"evaluated": bool(evaluated)})
    return response


class ServicePrincipal:
    is_authenticated = True

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name


class FromHeaderAuthentication(BaseAuthentication):
    """Stands in for service-token authentication: trusts a test header."""

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, None] | None:
        name = request.META.get("HTTP_X_TEST_SERVICE")
        return (ServicePrincipal(name), None) if name else None


class ServiceView(APIView):
    authentication_classes = [FromHeaderAuthentication]
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response({"caller": getattr(request.user, "service_name", None)})


urlpatterns = [
    path("echo", echo),
    path("async-echo", async_echo),
    path("fail", fail),
    path("not-found", not_found),
    path("stream", stream),
    path("problem/<int:status>/<str:marker>", problem),
    path("lazy-user", lazy_user),
    path("service", ServiceView.as_view()),
    path("health/live", echo),
]
