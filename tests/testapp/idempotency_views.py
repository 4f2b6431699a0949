"""Views exercising Idempotency-Key support, under ``/idempotency/``.

Each execution of a view body is counted in the cache under the name given in
the request body's ``counter`` member, so tests can tell an execution from a
replay, even across processes sharing one Redis.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from django_microkit.idempotency import IdempotentMixin


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    return data if isinstance(data, dict) else {}


class ServicePrincipal:
    """Stands in for the principal service authentication provides."""

    is_authenticated = True

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name


class NamedPrincipal:
    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.name = name


class UserLike:
    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


class BarePrincipal:
    is_authenticated = True

    def __str__(self) -> str:
        return "bare"


class HeaderAuthentication(BaseAuthentication):
    """``X-Test-Caller: service:<name>``, ``name:<name>``, ``user:<pk>`` or
    ``bare``; no header is anonymous."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        value = request.headers.get("X-Test-Caller")
        if not value:
            return None
        if value == "invalid":
            raise AuthenticationFailed("Invalid test credentials.")
        kind, _, name = value.partition(":")
        principals: dict[str, Any] = {
            "service": lambda: ServicePrincipal(name),
            "name": lambda: NamedPrincipal(name),
            "user": lambda: UserLike(int(name)),
            "bare": BarePrincipal,
        }
        return principals[kind](), None


def count_execution(counter: str) -> int:
    key = f"idempotency-tests:count:{counter}"
    cache.add(key, 0, 300)
    return cache.incr(key)


def executions(counter: str) -> int:
    value: int = cache.get(f"idempotency-tests:count:{counter}", 0)
    return value


class CounterView(IdempotentMixin, APIView):
    """Counts its executions; the body steers the outcome.

    ``sleep`` (seconds) before answering, ``status`` of the answer, ``fail`` to
    raise an unhandled exception, ``invalid`` to refuse it as invalid (a 400
    problem).
    """

    authentication_classes = [HeaderAuthentication]
    permission_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        data: Any = request.data
        count = count_execution(str(data.get("counter", "default")))
        time.sleep(float(data.get("sleep", 0)))
        if data.get("fail"):
            raise RuntimeError("the view failed")
        if data.get("invalid"):
            raise serializers.ValidationError({"counter": ["Not this one."]})
        response = Response(
            {"count": count, "echo": data},
            status=int(data.get("status", 201)),
            headers={"Location": f"/idempotency/things/{count}"},
        )
        response.set_cookie("session", "first")
        response["X-Custom"] = "kept"
        return response

    def patch(self, request: Request) -> Response:
        return self.post(request)

    def put(self, request: Request) -> Response:
        return self.post(request)

    def get(self, request: Request) -> Response:
        return Response({"count": executions(request.query_params["counter"])})


class AnyJSON(JSONParser):
    """Reads every body as JSON, whatever its media type."""

    media_type = "*/*"


class AnyBodyView(CounterView):
    parser_classes = [AnyJSON]


class RequiredKeyView(CounterView):
    idempotency_key_required = True


class PutOnlyView(CounterView):
    idempotency_methods = ("PUT",)


class StreamingView(IdempotentMixin, APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request) -> StreamingHttpResponse:
        count = count_execution(str(_body(request).get("counter", "stream")))
        return StreamingHttpResponse(iter([b"chunk ", str(count).encode()]))


class NoContentView(CounterView):
    def post(self, request: Request) -> Response:
        count_execution(str(_body(request).get("counter", "no-content")))
        return Response(status=204)


class DjangoResponseView(CounterView):
    """Answers with a plain Django response rather than a DRF one."""

    def post(self, request: Request) -> Any:
        count = count_execution(str(_body(request).get("counter", "django")))
        return JsonResponse({"count": count}, status=201)


class ThingSerializer(serializers.Serializer[Any]):
    counter = serializers.CharField()


class ThingViewSet(IdempotentMixin, ViewSet):
    """A viewset: ``create`` (POST) honours keys, ``list`` (GET) does not."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    serializer_class = ThingSerializer

    def list(self, request: Request) -> Response:
        return Response([])

    def create(self, request: Request) -> Response:
        count = count_execution(str(_body(request).get("counter", "things")))
        return Response({"count": count}, status=201)


class PlainView(APIView):
    """Without the mixin: keys mean nothing here."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        count = count_execution(str(_body(request).get("counter", "plain")))
        return Response({"count": count}, status=201)


router = SimpleRouter()
router.register("things", ThingViewSet, basename="thing")

urlpatterns = [
    path("counter/", CounterView.as_view()),
    path("any-body/", AnyBodyView.as_view()),
    path("required/", RequiredKeyView.as_view()),
    path("put-only/", PutOnlyView.as_view()),
    path("streaming/", StreamingView.as_view()),
    path("no-content/", NoContentView.as_view()),
    path("django-response/", DjangoResponseView.as_view()),
    path("plain/", PlainView.as_view()),
    *router.urls,
]
