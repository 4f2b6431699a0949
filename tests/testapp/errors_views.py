"""Views raising every kind of error, DRF and plain Django, sync and async."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
)
from django.views import View
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from django_microkit.errors import Problem
from django_microkit.openapi import problem_response
from tests.testapp.models import Widget


class TokenExpired(exceptions.AuthenticationFailed):
    default_code = "token_expired"
    default_detail = "The token has expired."


class BearerAuthentication(BaseAuthentication):
    """Anonymous without a header; refuses any token as expired."""

    def authenticate(self, request: Request) -> None:
        if request.META.get("HTTP_AUTHORIZATION"):
            raise TokenExpired()
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer error="invalid_token"'


class CsrfSessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Request) -> None:
        self.enforce_csrf(request)
        return None


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


class DenyWithScope(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        raise InsufficientScope("The token lacks the orders:write scope.")


class DenyAll(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class AlwaysThrottled(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        return False

    def wait(self) -> float:
        return 12.5


class AddressSerializer(serializers.Serializer[Any]):
    city = serializers.CharField(max_length=5)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("city") == "Nope":
            raise serializers.ValidationError("Nobody ships there.")
        return attrs


class ItemSerializer(serializers.Serializer[Any]):
    sku = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)


class OrderSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    address = AddressSerializer(required=False)
    items = ItemSerializer(many=True, required=False)
    tags = serializers.ListField(child=serializers.IntegerField(), required=False)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # Names RFC 6901 has to escape.
        fields["a/b"] = serializers.IntegerField(required=False)
        fields["m~n"] = serializers.IntegerField(required=False)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("name") == "forbidden":
            raise serializers.ValidationError("This order cannot be placed.")
        return attrs


class FilterSerializer(serializers.Serializer[Any]):
    size = serializers.IntegerField(required=False)


class OrdersView(APIView):
    """POST validates the body; GET validates the query string."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(parameters=[FilterSerializer], responses={200: OrderSerializer})
    def get(self, request: Request) -> Response:
        FilterSerializer(data=request.query_params).is_valid(raise_exception=True)
        return Response([])

    @extend_schema(
        request=OrderSerializer,
        responses={
            201: OrderSerializer,
            409: problem_response(
                "Not enough stock.",
                code="insufficient_stock",
                extensions={"available": {"type": "integer"}},
            ),
            422: problem_response(
                "Not enough funds.",
                extensions={"balance": {"type": "string"}},
                validation=True,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        OrderSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({}, status=201)


class RaiseView(APIView):
    """GET raises whatever ``RAISE[kind]`` builds."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Request, kind: str) -> Response:
        raise RAISE[kind]()

    def post(self, request: Request, kind: str) -> Response:
        request.data  # noqa: B018 - parsing is the point
        raise RAISE[kind]()


class InsufficientFunds(serializers.ValidationError):
    default_code = "insufficient_funds"


def _invalid_with_balance() -> Problem:
    errors = {"amount": [serializers.ErrorDetail("Too much.", code="max_value")]}
    return Problem.invalid(errors, balance="12.50", detail="Not enough funds.")


RAISE: dict[str, Any] = {
    "problem": lambda: Problem(
        409,
        "insufficient_stock",
        type="https://errors.example.com/insufficient_stock",
        title="Not enough stock.",
        detail="Only 2 left.",
        headers={"Retry-After": "30"},
        available=2,
    ),
    "problem-errors": lambda: Problem(
        400,
        "invalid_header",
        errors=[{"code": "invalid", "detail": "Bad header.", "header": "X-Thing"}],
    ),
    "problem-typed": lambda: Problem(
        410, "version_sunset", type="https://docs.example.com/sunset"
    ),
    "invalid-with-balance": _invalid_with_balance,
    "custom-validation": lambda: InsufficientFunds("Balance too low."),
    "validation-string": lambda: serializers.ValidationError("Just wrong."),
    "not-found": exceptions.NotFound,
    "http404": lambda: Http404("No Widget matches the given query."),
    "permission-denied": exceptions.PermissionDenied,
    "django-permission-denied": lambda: DjangoPermissionDenied("internal reason"),
    "suspicious": lambda: SuspiciousOperation("Attempted access to '/etc' denied."),
    "bad-request": lambda: BadRequest("internal reason"),
    "django-validation": lambda: DjangoValidationError(
        {
            "size": [
                DjangoValidationError("Too big: %(v)s.", code="max", params={"v": 5})
            ],
            "__all__": ["Inconsistent."],
        }
    ),
    "django-validation-list": lambda: DjangoValidationError("Just wrong."),
    "api-exception": exceptions.APIException,
    "api-exception-dict": lambda: exceptions.APIException({"field": ["Broken."]}),
    "unavailable": lambda: type(
        "Unavailable", (exceptions.APIException,), {"status_code": 503}
    )("Inventory is down."),
    "teapot": lambda: type(
        "Teapot", (exceptions.APIException,), {"status_code": 418}
    )(),
    "odd-status": lambda: Problem(499, "client_closed"),
    "unauthorized": lambda: Problem(401, "session_expired", detail="Sign in again."),
    "crash": lambda: RuntimeError("password=hunter2"),
    "database-down": lambda: OperationalError("connection refused: password=hunter2"),
    "database-gone": lambda: InterfaceError("connection already closed"),
}


class WriteThenFailView(APIView):
    """Writes, then fails: the write must not survive (ATOMIC_REQUESTS)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        Widget.objects.create(name="half-done")
        raise Problem(409, "conflict_after_write")


class ParseView(APIView):
    """Accepts JSON only (415 otherwise)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        return Response(request.data)


class UploadView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        return Response(dict(request.data))


class AuthView(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({})  # pragma: no cover - never authenticated


class SessionAuthView(APIView):
    authentication_classes = [CsrfSessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({})  # pragma: no cover - never authenticated

    def post(self, request: Request) -> Response:
        return Response({})  # pragma: no cover - CSRF always fails


class ProblemAuthView(APIView):
    """Raises a 401 Problem: the view's auth scheme is named for it."""

    authentication_classes = [BearerAuthentication]
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        raise Problem(401, "session_expired", detail="Sign in again.")


class ScopeView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [DenyWithScope]
    problem_statuses = [403, 499, 500]

    @extend_schema(
        responses={200: None, 503: problem_response("The inventory is down.")}
    )
    def get(self, request: Request) -> Response:
        return Response({})  # pragma: no cover


class DeniedView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [DenyAll]

    def get(self, request: Request) -> Response:
        return Response({})  # pragma: no cover


class ThrottledView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes = [AlwaysThrottled]

    def get(self, request: Request) -> Response:
        return Response({})  # pragma: no cover


class WidgetView(APIView):
    """A detail route: the schema documents its 404."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated]
    problem_statuses = {"delete": [401, 404, 500]}

    def get(self, request: Request, pk: int) -> Response:
        raise exceptions.NotFound()  # pragma: no cover

    def delete(self, request: Request, pk: int) -> Response:
        raise exceptions.NotFound()  # pragma: no cover


# -- plain Django views ------------------------------------------------------


def plain_raise(request: HttpRequest, kind: str) -> HttpResponse:
    raise RAISE[kind]()


async def async_raise(request: HttpRequest, kind: str) -> HttpResponse:
    raise RAISE[kind]()


def plain_body(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body)


def plain_form(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(dict(request.POST)))  # pragma: no cover


class PlainView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


class AsyncPlainView(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


@require_POST
def post_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")  # pragma: no cover


@csrf_protect
def csrf_protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")  # pragma: no cover


def headered_not_allowed(request: HttpRequest) -> HttpResponse:
    """A 405 that inner code decorated with its own headers and cookie."""
    response = post_only(request)
    response["X-Trace"] = "kept"
    response["Vary"] = "Cookie"
    response.set_cookie("seen", "1")
    return response


def moved_elsewhere(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A middleware of the service's own, redirecting ``/errors/orders`` to
    another URL than ``APPEND_SLASH`` would."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path == "/errors/orders":
            return HttpResponsePermanentRedirect("/errors/elsewhere/")
        return get_response(request)

    return middleware
