from __future__ import annotations

import json
import logging
import re
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponseBase
from django.test import AsyncClient, Client, RequestFactory, override_settings
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

import django_microkit
from django_microkit.errors import (
    ExceptionHandler,
    Problem,
    error_items,
    exception_handler,
    get_handler_class,
    json_pointer,
    server_error,
)
from django_microkit.errors.handler import get_handler, reason_phrase

SCHEMA = json.loads(
    (Path(django_microkit.__file__).parent / "schemas" / "problem.json").read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA)

PARSED_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
]

SERVER_ERROR_DETAIL = (
    "The server could not complete the request. "
    "Quote the request ID when reporting the problem."
)


def problem(
    status: int, code: str, detail: str, instance: str, **members: Any
) -> dict[str, Any]:
    """The expected body, with the defaults of an unconfigured service."""
    phrases = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        409: "Conflict",
        410: "Gone",
        413: "Content Too Large",
        415: "Unsupported Media Type",
        418: "I'm a Teapot",
        429: "Too Many Requests",
        499: "Error",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    return {
        "type": "about:blank",
        "title": phrases[status],
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        **members,
    }


def body_of(response: Any) -> dict[str, Any]:
    """The problem body, validated against the shipped JSON Schema."""
    body: dict[str, Any] = json.loads(response.content)
    VALIDATOR.validate(body)
    if hasattr(response, "data"):
        assert body == response.data  # the document the handler built
    if response.has_header("X-Request-ID"):
        # Set by RequestIDMiddleware: the body names the same request.
        assert response["X-Request-ID"] == body.pop("request_id")
    return body


# -- DRF views ----------------------------------------------------------------

ORDER_INVALID = {
    "address": {"city": "Toolong"},
    "items": [{"sku": "a", "quantity": 1}, {"quantity": 0}],
    "tags": [1, "x"],
    "a/b": "x",
    "m~n": "y",
}

DRF_CASES: list[
    tuple[str, str, str, dict[str, Any], dict[str, Any], dict[str, str]]
] = [
    (
        "field, nested, list-item errors with escaped pointers",
        "post",
        "/errors/orders/",
        {"data": ORDER_INVALID, "format": "json"},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/orders/",
            errors=[
                {
                    "code": "required",
                    "detail": "This field is required.",
                    "pointer": "/name",
                },
                {
                    "code": "max_length",
                    "detail": "Ensure this field has no more than 5 characters.",
                    "pointer": "/address/city",
                },
                {
                    "code": "required",
                    "detail": "This field is required.",
                    "pointer": "/items/1/sku",
                },
                {
                    "code": "min_value",
                    "detail": "Ensure this value is greater than or equal to 1.",
                    "pointer": "/items/1/quantity",
                },
                {
                    "code": "invalid",
                    "detail": "A valid integer is required.",
                    "pointer": "/tags/1",
                },
                {
                    "code": "invalid",
                    "detail": "A valid integer is required.",
                    "pointer": "/a~1b",
                },
                {
                    "code": "invalid",
                    "detail": "A valid integer is required.",
                    "pointer": "/m~0n",
                },
            ],
        ),
        {},
    ),
    (
        "non-field error of a nested serializer points at it",
        "post",
        "/errors/orders/",
        {"data": {"name": "x", "address": {"city": "Nope"}}, "format": "json"},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/orders/",
            errors=[
                {
                    "code": "invalid",
                    "detail": "Nobody ships there.",
                    "pointer": "/address",
                }
            ],
        ),
        {},
    ),
    (
        "top-level non-field error has no pointer",
        "post",
        "/errors/orders/",
        {"data": {"name": "forbidden"}, "format": "json"},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/orders/",
            errors=[{"code": "invalid", "detail": "This order cannot be placed."}],
        ),
        {},
    ),
    (
        "a list that is not a list",
        "post",
        "/errors/orders/",
        {"data": {"name": "x", "items": "nope"}, "format": "json"},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/orders/",
            errors=[
                {
                    "code": "not_a_list",
                    "detail": 'Expected a list of items but got type "str".',
                    "pointer": "/items",
                }
            ],
        ),
        {},
    ),
    (
        "query parameters are named, not pointed at",
        "get",
        "/errors/orders/?size=big",
        {},
        problem(
            400,
            "validation_error",
            "The query parameters did not pass validation.",
            "/errors/orders/",
            errors=[
                {
                    "code": "invalid",
                    "detail": "A valid integer is required.",
                    "parameter": "size",
                }
            ],
        ),
        {},
    ),
    (
        "malformed JSON",
        "post",
        "/errors/orders/",
        {"data": "{", "content_type": "application/json"},
        problem(
            400,
            "parse_error",
            "JSON parse error - Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            "/errors/orders/",
        ),
        {},
    ),
    (
        "unsupported media type names what is accepted",
        "post",
        "/errors/parse/",
        {"data": "x", "content_type": "text/plain"},
        problem(
            415,
            "unsupported_media_type",
            'Unsupported media type "text/plain" in request.',
            "/errors/parse/",
        ),
        {"Accept": ", ".join(PARSED_TYPES)},
    ),
    (
        "no credentials",
        "get",
        "/errors/auth/",
        {},
        problem(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "/errors/auth/",
        ),
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    ),
    (
        "an authenticator's own code",
        "get",
        "/errors/auth/",
        {"headers": {"Authorization": "Bearer old"}},
        problem(401, "token_expired", "The token has expired.", "/errors/auth/"),
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    ),
    (
        "no credentials, no auth scheme to name: 403 as DRF decides",
        "get",
        "/errors/session/",
        {},
        problem(
            403,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "/errors/session/",
        ),
        {},
    ),
    (
        "a 401 Problem names the view's auth scheme",
        "get",
        "/errors/problem-auth/",
        {},
        problem(401, "session_expired", "Sign in again.", "/errors/problem-auth/"),
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    ),
    (
        "a 401 Problem in a view without auth scheme",
        "get",
        "/errors/raise/unauthorized/",
        {},
        problem(
            401, "session_expired", "Sign in again.", "/errors/raise/unauthorized/"
        ),
        {},
    ),
    (
        "a permission class's own code",
        "get",
        "/errors/scope/",
        {},
        problem(
            403,
            "insufficient_scope",
            "The token lacks the orders:write scope.",
            "/errors/scope/",
        ),
        {},
    ),
    (
        "permission denied",
        "get",
        "/errors/denied/",
        {},
        problem(
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            "/errors/denied/",
        ),
        {},
    ),
    (
        "not found",
        "get",
        "/errors/raise/not-found/",
        {},
        problem(404, "not_found", "Not found.", "/errors/raise/not-found/"),
        {},
    ),
    (
        "Http404 keeps its developer message to itself",
        "get",
        "/errors/raise/http404/",
        {},
        problem(404, "not_found", "Not found.", "/errors/raise/http404/"),
        {},
    ),
    (
        "method not allowed",
        "delete",
        "/errors/orders/",
        {},
        problem(
            405, "method_not_allowed", 'Method "DELETE" not allowed.', "/errors/orders/"
        ),
        {"Allow": "GET, POST, HEAD, OPTIONS"},
    ),
    (
        "not acceptable",
        "get",
        "/errors/orders/",
        {"headers": {"Accept": "text/csv"}},
        problem(
            406,
            "not_acceptable",
            "Could not satisfy the request Accept header.",
            "/errors/orders/",
        ),
        {},
    ),
    (
        "throttled",
        "get",
        "/errors/throttled/",
        {},
        problem(
            429,
            "throttled",
            "Request was throttled. Expected available in 13 seconds.",
            "/errors/throttled/",
        ),
        {"Retry-After": "13"},
    ),
    (
        "Django's PermissionDenied",
        "get",
        "/errors/raise/django-permission-denied/",
        {},
        problem(
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            "/errors/raise/django-permission-denied/",
        ),
        {},
    ),
    (
        "SuspiciousOperation",
        "get",
        "/errors/raise/suspicious/",
        {},
        problem(
            400,
            "bad_request",
            "The request could not be understood.",
            "/errors/raise/suspicious/",
        ),
        {},
    ),
    (
        "BadRequest",
        "get",
        "/errors/raise/bad-request/",
        {},
        problem(
            400,
            "bad_request",
            "The request could not be understood.",
            "/errors/raise/bad-request/",
        ),
        {},
    ),
    (
        "Django's ValidationError in a GET",
        "get",
        "/errors/raise/django-validation/",
        {},
        problem(
            400,
            "validation_error",
            "The query parameters did not pass validation.",
            "/errors/raise/django-validation/",
            errors=[
                {"code": "max", "detail": "Too big: 5.", "parameter": "size"},
                {"code": "invalid", "detail": "Inconsistent."},
            ],
        ),
        {},
    ),
    (
        "Django's ValidationError in a POST",
        "post",
        "/errors/raise/django-validation/",
        {"format": "json"},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/raise/django-validation/",
            errors=[
                {"code": "max", "detail": "Too big: 5.", "pointer": "/size"},
                {"code": "invalid", "detail": "Inconsistent."},
            ],
        ),
        {},
    ),
    (
        "Django's ValidationError without fields",
        "get",
        "/errors/raise/django-validation-list/",
        {},
        problem(
            400,
            "validation_error",
            "The query parameters did not pass validation.",
            "/errors/raise/django-validation-list/",
            errors=[{"code": "invalid", "detail": "Just wrong."}],
        ),
        {},
    ),
    (
        "DRF ValidationError with a message only",
        "get",
        "/errors/raise/validation-string/",
        {},
        problem(
            400,
            "validation_error",
            "The query parameters did not pass validation.",
            "/errors/raise/validation-string/",
            errors=[{"code": "invalid", "detail": "Just wrong."}],
        ),
        {},
    ),
    (
        "a ValidationError subclass names the problem",
        "get",
        "/errors/raise/custom-validation/",
        {},
        problem(
            400,
            "insufficient_funds",
            "The query parameters did not pass validation.",
            "/errors/raise/custom-validation/",
            errors=[{"code": "insufficient_funds", "detail": "Balance too low."}],
        ),
        {},
    ),
    (
        "Problem with a title, headers and an extension member",
        "get",
        "/errors/raise/problem/",
        {},
        {
            **problem(
                409, "insufficient_stock", "Only 2 left.", "/errors/raise/problem/"
            ),
            "type": "https://errors.example.com/insufficient_stock",
            "title": "Not enough stock.",
            "available": 2,
        },
        {"Retry-After": "30"},
    ),
    (
        "Problem with header errors",
        "get",
        "/errors/raise/problem-errors/",
        {},
        problem(
            400,
            "invalid_header",
            "The request could not be completed.",
            "/errors/raise/problem-errors/",
            errors=[{"code": "invalid", "detail": "Bad header.", "header": "X-Thing"}],
        ),
        {},
    ),
    (
        "Problem with its own type",
        "get",
        "/errors/raise/problem-typed/",
        {},
        {
            **problem(
                410,
                "version_sunset",
                "The request could not be completed.",
                "/errors/raise/problem-typed/",
            ),
            "type": "https://docs.example.com/sunset",
        },
        {},
    ),
    (
        "validation problem with an extension member",
        "get",
        "/errors/raise/invalid-with-balance/",
        {},
        problem(
            400,
            "validation_error",
            "Not enough funds.",
            "/errors/raise/invalid-with-balance/",
            errors=[{"code": "max_value", "detail": "Too much.", "pointer": "/amount"}],
            balance="12.50",
        ),
        {},
    ),
    (
        "a bare APIException",
        "get",
        "/errors/raise/api-exception/",
        {},
        problem(
            500,
            "server_error",
            "A server error occurred.",
            "/errors/raise/api-exception/",
        ),
        {},
    ),
    (
        "an APIException with a dict detail",
        "get",
        "/errors/raise/api-exception-dict/",
        {},
        problem(
            500,
            "server_error",
            "The request could not be completed.",
            "/errors/raise/api-exception-dict/",
            errors=[{"code": "error", "detail": "Broken.", "pointer": "/field"}],
        ),
        {},
    ),
    (
        "a deliberate 503 keeps its detail",
        "get",
        "/errors/raise/unavailable/",
        {},
        problem(
            503,
            "service_unavailable",
            "Inventory is down.",
            "/errors/raise/unavailable/",
        ),
        {},
    ),
    (
        "an unlisted status gets a generic code",
        "get",
        "/errors/raise/teapot/",
        {},
        problem(418, "error", "A server error occurred.", "/errors/raise/teapot/"),
        {},
    ),
    (
        "a status without a reason phrase",
        "get",
        "/errors/raise/odd-status/",
        {},
        problem(
            499,
            "client_closed",
            "The request could not be completed.",
            "/errors/raise/odd-status/",
        ),
        {},
    ),
    (
        "an unexpected exception says nothing of itself",
        "get",
        "/errors/raise/crash/",
        {},
        problem(500, "server_error", SERVER_ERROR_DETAIL, "/errors/raise/crash/"),
        {},
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "expected", "headers"),
    [case[1:] for case in DRF_CASES],
    ids=[case[0] for case in DRF_CASES],
)
def test_drf_errors_are_problems(
    method: str,
    url: str,
    kwargs: dict[str, Any],
    expected: dict[str, Any],
    headers: dict[str, str],
) -> None:
    client = APIClient(raise_request_exception=False)
    response = getattr(client, method)(url, **kwargs)
    assert (expected["status"], "application/problem+json") == (
        response.status_code,
        response["Content-Type"],
    )
    assert expected == body_of(response)
    assert headers == {name: response[name] for name in headers}
    assert "Accept" in response["Vary"]


@pytest.mark.django_db
@pytest.mark.parametrize("atomic_requests", [True, False])
def test_atomic_requests_roll_back(
    atomic_requests: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    from tests.testapp.models import Widget

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    response = APIClient().post("/errors/write-then-fail/")
    assert response.status_code == 409
    assert Widget.objects.count() == (0 if atomic_requests else 1)


def test_drf_csrf_failure() -> None:
    client = APIClient(enforce_csrf_checks=True)
    response = client.post("/errors/session/")
    assert problem(
        403, "csrf_failed", "CSRF verification failed.", "/errors/session/"
    ) == body_of(response)


def test_drf_request_too_large(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = APIClient().post("/errors/upload/", {"note": "x" * 500})
    assert problem(
        413,
        "request_too_large",
        "The request is larger than the server accepts.",
        "/errors/upload/",
    ) == body_of(response)


# -- plain Django views -------------------------------------------------------

PLAIN_CASES: list[
    tuple[str, str, str, dict[str, Any], dict[str, Any], dict[str, str]]
] = [
    (
        "Problem",
        "get",
        "/errors/plain/raise/problem/",
        {},
        {
            **problem(
                409,
                "insufficient_stock",
                "Only 2 left.",
                "/errors/plain/raise/problem/",
            ),
            "type": "https://errors.example.com/insufficient_stock",
            "title": "Not enough stock.",
            "available": 2,
        },
        {"Retry-After": "30"},
    ),
    (
        "Http404",
        "get",
        "/errors/plain/raise/http404/",
        {},
        problem(404, "not_found", "Not found.", "/errors/plain/raise/http404/"),
        {},
    ),
    (
        "PermissionDenied",
        "get",
        "/errors/plain/raise/django-permission-denied/",
        {},
        problem(
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            "/errors/plain/raise/django-permission-denied/",
        ),
        {},
    ),
    (
        "SuspiciousOperation",
        "get",
        "/errors/plain/raise/suspicious/",
        {},
        problem(
            400,
            "bad_request",
            "The request could not be understood.",
            "/errors/plain/raise/suspicious/",
        ),
        {},
    ),
    (
        "ValidationError",
        "post",
        "/errors/plain/raise/django-validation/",
        {},
        problem(
            400,
            "validation_error",
            "The request body did not pass validation.",
            "/errors/plain/raise/django-validation/",
            errors=[
                {"code": "max", "detail": "Too big: 5.", "pointer": "/size"},
                {"code": "invalid", "detail": "Inconsistent."},
            ],
        ),
        {},
    ),
    (
        "unexpected exception",
        "get",
        "/errors/plain/raise/crash/",
        {},
        problem(500, "server_error", SERVER_ERROR_DETAIL, "/errors/plain/raise/crash/"),
        {},
    ),
    (
        "async view raising a Problem",
        "get",
        "/errors/plain/async/problem/",
        {},
        {
            **problem(
                409,
                "insufficient_stock",
                "Only 2 left.",
                "/errors/plain/async/problem/",
            ),
            "type": "https://errors.example.com/insufficient_stock",
            "title": "Not enough stock.",
            "available": 2,
        },
        {"Retry-After": "30"},
    ),
    (
        "async view crashing",
        "get",
        "/errors/plain/async/crash/",
        {},
        problem(500, "server_error", SERVER_ERROR_DETAIL, "/errors/plain/async/crash/"),
        {},
    ),
    (
        "View without the method",
        "post",
        "/errors/plain/view/",
        {},
        problem(
            405,
            "method_not_allowed",
            'Method "POST" not allowed.',
            "/errors/plain/view/",
        ),
        {"Allow": "GET, HEAD, OPTIONS"},
    ),
    (
        "async View without the method",
        "delete",
        "/errors/plain/async-view/",
        {},
        problem(
            405,
            "method_not_allowed",
            'Method "DELETE" not allowed.',
            "/errors/plain/async-view/",
        ),
        {"Allow": "GET, HEAD, OPTIONS"},
    ),
    (
        "require_POST",
        "get",
        "/errors/plain/post-only/",
        {},
        problem(
            405,
            "method_not_allowed",
            'Method "GET" not allowed.',
            "/errors/plain/post-only/",
        ),
        {"Allow": "POST"},
    ),
    (
        "a 405 keeps the headers others added",
        "get",
        "/errors/plain/headered/",
        {},
        problem(
            405,
            "method_not_allowed",
            'Method "GET" not allowed.',
            "/errors/plain/headered/",
        ),
        {"Allow": "POST", "X-Trace": "kept", "Vary": "Accept, Cookie"},
    ),
    (
        "unknown URL",
        "get",
        "/nowhere/",
        {},
        problem(404, "not_found", "Not found.", "/nowhere/"),
        {},
    ),
]

ASGI_MIDDLEWARE = ["django_microkit.errors.ProblemMiddleware"]


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize(
    ("method", "url", "kwargs", "expected", "headers"),
    [case[1:] for case in PLAIN_CASES],
    ids=[case[0] for case in PLAIN_CASES],
)
def test_plain_django_errors_are_problems(
    mode: str,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    expected: dict[str, Any],
    headers: dict[str, str],
) -> None:
    if mode == "wsgi":
        response = getattr(Client(raise_request_exception=False), method)(url, **kwargs)
    else:
        client = AsyncClient(raise_request_exception=False)
        response = async_to_sync(getattr(client, method))(url, **kwargs)
    assert (expected["status"], "application/problem+json") == (
        response.status_code,
        response["Content-Type"],
    )
    assert expected == body_of(response)
    assert headers == {name: response[name] for name in headers}


def test_instance_is_an_escaped_path() -> None:
    # WSGI only: Django's AsyncClient mis-decodes non-ASCII paths.
    response = Client().get("/nowhere/ä b/")
    assert body_of(response)["instance"] == "/nowhere/%C3%A4%20b/"


def test_a_converted_405_keeps_cookies() -> None:
    response = Client().get("/errors/plain/headered/")
    assert response.cookies["seen"].value == "1"


REQUEST_ID = "django_microkit.request_id.RequestIDMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
PROBLEMS = "django_microkit.errors.ProblemMiddleware"
#: ProblemMiddleware after CommonMiddleware (as documented) or before it.
SLASH_ORDERS = {
    "after-common": [REQUEST_ID, COMMON, PROBLEMS],
    "before-common": [REQUEST_ID, PROBLEMS, COMMON],
}


def _send(mode: str, method: str, url: str, **kwargs: Any) -> Any:
    if mode == "wsgi":
        return getattr(Client(raise_request_exception=False), method)(url, **kwargs)
    client = AsyncClient(raise_request_exception=False)
    return async_to_sync(getattr(client, method))(url, **kwargs)


@pytest.mark.parametrize("order", list(SLASH_ORDERS))
@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize("method", ["get", "post", "head"])
def test_append_slash_is_a_308_for_api_clients(
    order: str, mode: str, method: str, settings: Any
) -> None:
    settings.MIDDLEWARE = SLASH_ORDERS[order]
    body = {"data": ORDER_INVALID, "content_type": "application/json"}
    response = _send(
        mode, method, "/errors/orders?x=1", **body if method == "post" else {}
    )
    assert (response.status_code, response["Location"]) == (308, "/errors/orders/?x=1")
    assert response["Content-Type"] == "application/problem+json"
    assert "Accept" in response["Vary"]
    if method == "head":
        return
    document = json.loads(response.content)
    assert document.pop("request_id") == response["X-Request-ID"]
    assert document == {
        "type": "about:blank",
        "title": "Permanent Redirect",
        "status": 308,
        "detail": "This resource's URL ends with a slash: /errors/orders/?x=1",
        "instance": "/errors/orders",
        "code": "append_slash",
    }


def test_the_308_names_the_request_id_when_there_is_one(settings: Any) -> None:
    settings.MIDDLEWARE = [COMMON, PROBLEMS]
    response = Client().get("/errors/orders")
    assert response.status_code == 308
    assert "request_id" not in response.json()


@pytest.mark.parametrize("debug", [False, True])
def test_a_client_following_the_308_keeps_its_method_and_body(
    debug: bool, settings: Any
) -> None:
    # Django refuses to drop a POST body under DEBUG with a RuntimeError; the
    # 308 keeps it, so there is nothing to refuse.
    settings.MIDDLEWARE = SLASH_ORDERS["after-common"]
    settings.DEBUG = debug
    response = Client().post(
        "/errors/orders", ORDER_INVALID, content_type="application/json", follow=True
    )
    assert response.redirect_chain == [("/errors/orders/", 308)]
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert response.json()["errors"][0] == {
        "code": "required",
        "detail": "This field is required.",
        "pointer": "/name",
    }


@pytest.mark.parametrize("order", list(SLASH_ORDERS))
def test_append_slash_of_a_browser_is_djangos_redirect(
    order: str, settings: Any
) -> None:
    settings.MIDDLEWARE = SLASH_ORDERS[order]
    with override_settings(MICROKIT={"ERRORS": {"HTML_FALLBACK": True}}):
        response = Client().get("/errors/orders", headers=HTML)
        assert (response.status_code, response["Location"]) == (301, "/errors/orders/")
        response = Client().get(
            "/errors/orders", headers={"Accept": "application/json"}
        )
        assert (response.status_code, response["Content-Type"]) == (
            308,
            "application/json",
        )


@pytest.mark.parametrize(
    ("middleware", "url", "status"),
    [
        # No CommonMiddleware: Django does not append slashes either.
        ([REQUEST_ID, PROBLEMS], "/errors/orders", 404),
        # Not found with the slash either.
        (SLASH_ORDERS["after-common"], "/nowhere", 404),
        (SLASH_ORDERS["before-common"], "/nowhere", 404),
        # A redirect of the service's own is kept.
        (
            [REQUEST_ID, PROBLEMS, "tests.testapp.errors_views.moved_elsewhere"],
            "/errors/orders",
            301,
        ),
    ],
)
def test_other_responses_without_a_slash_are_kept(
    middleware: list[str], url: str, status: int, settings: Any
) -> None:
    settings.MIDDLEWARE = middleware
    assert Client().get(url).status_code == status


def test_append_slash_off_is_a_404(settings: Any) -> None:
    settings.MIDDLEWARE = SLASH_ORDERS["after-common"]
    settings.APPEND_SLASH = False
    response = Client().get("/errors/orders")
    assert problem(404, "not_found", "Not found.", "/errors/orders") == body_of(
        response
    )


@pytest.mark.parametrize("middleware", [True, False])
def test_malformed_multipart_body(middleware: bool, settings: Any) -> None:
    if not middleware:
        settings.MIDDLEWARE = []
    response = Client().post(
        "/errors/plain/form/", b"--x", content_type="multipart/form-data; boundary="
    )
    assert problem(
        400, "parse_error", "Malformed request.", "/errors/plain/form/"
    ) == body_of(response)


def test_server_error_view_outside_exception_handling(rf: Any) -> None:
    response = server_error(rf.get("/somewhere/"))
    assert problem(500, "server_error", SERVER_ERROR_DETAIL, "/somewhere/") == body_of(
        response
    )


def test_csrf_failure_view() -> None:
    response = Client(enforce_csrf_checks=True).post("/errors/plain/csrf/")
    assert problem(
        403, "csrf_failed", "CSRF cookie not set.", "/errors/plain/csrf/"
    ) == body_of(response)


def test_csrf_failure_never_echoes_a_header(settings: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/errors/plain/csrf/", headers={"Origin": "https://evil.example"}, secure=True
    )
    body = body_of(response)
    assert "evil" not in response.content.decode()
    assert body["detail"] == "CSRF verification failed."


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_request_too_large(mode: str, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response: HttpResponseBase
    if mode == "wsgi":
        response = Client().post(
            "/errors/plain/body/", "x" * 500, content_type="text/plain"
        )
    else:
        response = async_to_sync(AsyncClient().post)(
            "/errors/plain/body/", "x" * 500, content_type="text/plain"
        )
    assert problem(
        413,
        "request_too_large",
        "The request is larger than the server accepts.",
        "/errors/plain/body/",
    ) == body_of(response)


# Without ProblemMiddleware, Django's error views still answer with problems.
WITHOUT_MIDDLEWARE = [
    (
        "/errors/plain/raise/crash/",
        problem(500, "server_error", SERVER_ERROR_DETAIL, "/errors/plain/raise/crash/"),
    ),
    (
        "/errors/plain/async/crash/",
        problem(500, "server_error", SERVER_ERROR_DETAIL, "/errors/plain/async/crash/"),
    ),
    (
        "/errors/plain/raise/suspicious/",
        problem(
            400,
            "bad_request",
            "The request could not be understood.",
            "/errors/plain/raise/suspicious/",
        ),
    ),
    (
        "/errors/plain/raise/bad-request/",
        problem(
            400,
            "bad_request",
            "The request could not be understood.",
            "/errors/plain/raise/bad-request/",
        ),
    ),
    (
        "/errors/plain/raise/django-permission-denied/",
        problem(
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            "/errors/plain/raise/django-permission-denied/",
        ),
    ),
    (
        "/errors/plain/raise/http404/",
        problem(404, "not_found", "Not found.", "/errors/plain/raise/http404/"),
    ),
]


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize(("url", "expected"), WITHOUT_MIDDLEWARE)
def test_django_error_views(
    mode: str, url: str, expected: dict[str, Any], settings: Any
) -> None:
    settings.MIDDLEWARE = []
    response: HttpResponseBase
    if mode == "wsgi":
        response = Client(raise_request_exception=False).get(url)
    else:
        response = async_to_sync(AsyncClient(raise_request_exception=False).get)(url)
    assert expected == body_of(response)


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_django_error_view_request_too_large(mode: str, settings: Any) -> None:
    settings.MIDDLEWARE = []
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response: HttpResponseBase
    if mode == "wsgi":
        response = Client().post(
            "/errors/plain/body/", "x" * 500, content_type="text/plain"
        )
    else:
        response = async_to_sync(AsyncClient().post)(
            "/errors/plain/body/", "x" * 500, content_type="text/plain"
        )
    assert problem(
        413,
        "request_too_large",
        "The request is larger than the server accepts.",
        "/errors/plain/body/",
    ) == body_of(response)


# -- content negotiation ----------------------------------------------------------

NEGOTIATION = [
    (None, "application/problem+json"),
    ("*/*", "application/problem+json"),
    ("application/problem+json", "application/problem+json"),
    ("application/json", "application/json"),
    ("application/json; charset=utf-8", "application/json"),
    ("application/*", "application/problem+json"),
    ("application/json, application/problem+json;q=0.1", "application/problem+json"),
    ("application/json, application/problem+json;q=0", "application/json"),
    ("text/html", "application/problem+json"),
    (
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/problem+json",
    ),
]


@pytest.mark.parametrize(
    "url", ["/errors/raise/not-found/", "/errors/plain/raise/http404/", "/nowhere/"]
)
@pytest.mark.parametrize(("accept", "content_type"), NEGOTIATION)
def test_content_negotiation(url: str, accept: str | None, content_type: str) -> None:
    headers = {"Accept": accept} if accept else {}
    response = Client().get(url, headers=headers)
    assert content_type == response["Content-Type"]
    if response.status_code == 406:
        # DRF refuses a client that accepts nothing its renderers produce.
        assert (accept, url) == ("application/problem+json", "/errors/raise/not-found/")
        assert body_of(response)["code"] == "not_acceptable"
    else:
        assert problem(404, "not_found", "Not found.", url) == body_of(response)


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

HTML_FALLBACK_CASES = [
    ("/nowhere/", "get", 404, "text/html; charset=utf-8"),
    ("/errors/plain/raise/crash/", "get", 500, "text/html; charset=utf-8"),
    ("/errors/plain/raise/suspicious/", "get", 400, "text/html; charset=utf-8"),
    (
        "/errors/plain/raise/django-permission-denied/",
        "get",
        403,
        "text/html; charset=utf-8",
    ),
    ("/errors/plain/raise/http404/", "get", 404, "text/html; charset=utf-8"),
    ("/errors/plain/csrf/", "post", 403, "text/html; charset=utf-8"),
    ("/errors/plain/post-only/", "get", 405, "text/html; charset=utf-8"),
    # DRF views answer API clients: always a problem.
    ("/errors/raise/not-found/", "get", 404, "application/problem+json"),
]


@pytest.mark.parametrize(
    ("url", "method", "status", "content_type"), HTML_FALLBACK_CASES
)
def test_html_fallback_for_browsers(
    url: str, method: str, status: int, content_type: str
) -> None:
    client = Client(raise_request_exception=False, enforce_csrf_checks=True)
    with override_settings(MICROKIT={"ERRORS": {"HTML_FALLBACK": True}}):
        response = getattr(client, method)(url, headers=HTML)
        assert (status, content_type) == (
            response.status_code,
            response["Content-Type"],
        )
        # A JSON client of the same service still gets the problem.
        response = getattr(client, method)(url, headers={"Accept": "application/json"})
        assert response["Content-Type"] == "application/json"
        assert status == body_of(response)["status"]


def test_html_fallback_is_off_by_default() -> None:
    response = Client().get("/nowhere/", headers=HTML)
    assert response["Content-Type"] == "application/problem+json"
    assert problem(404, "not_found", "Not found.", "/nowhere/") == body_of(response)


# -- members -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "type_", "title"),
    [
        (
            "/errors/raise/not-found/",
            "https://errors.example.com/not_found",
            "Not found.",
        ),
        ("/nowhere/", "https://errors.example.com/not_found", "Not found."),
        (
            "/errors/raise/problem/",
            "https://errors.example.com/insufficient_stock",
            "Not enough stock.",
        ),
        # No title of its own: the reason phrase.
        (
            "/errors/raise/odd-status/",
            "https://errors.example.com/client_closed",
            "Error",
        ),
        ("/errors/raise/problem-typed/", "https://docs.example.com/sunset", "Gone"),
    ],
)
def test_type_base_uri(url: str, type_: str, title: str) -> None:
    with override_settings(
        MICROKIT={"ERRORS": {"TYPE_BASE_URI": "https://errors.example.com/"}}
    ):
        body = body_of(Client().get(url))
    assert (type_, title) == (body["type"], body["title"])


@pytest.mark.parametrize(
    "url", ["/errors/raise/not-found/", "/errors/plain/raise/crash/", "/nowhere/"]
)
def test_request_id_in_every_problem(url: str, settings: Any) -> None:
    client = Client(raise_request_exception=False)
    response = client.get(url, headers={"X-Request-ID": "req-42"})
    body = json.loads(response.content)
    VALIDATOR.validate(body)
    assert "req-42" == body["request_id"] == response["X-Request-ID"]
    settings.MIDDLEWARE = ["django_microkit.errors.ProblemMiddleware"]
    response = Client(raise_request_exception=False).get(url)
    assert "request_id" not in json.loads(response.content)


@pytest.mark.parametrize("url", ["/errors/raise/crash/", "/errors/plain/raise/crash/"])
def test_debug_adds_the_exception(url: str, settings: Any) -> None:
    settings.DEBUG = True
    body = body_of(Client(raise_request_exception=False).get(url))
    assert body["debug"]["exception"] == "RuntimeError: password=hunter2"
    assert any("RuntimeError" in line for line in body["debug"]["traceback"])


@pytest.mark.parametrize(
    "url",
    [
        "/errors/raise/crash/",
        "/errors/plain/raise/crash/",
        "/errors/plain/async/crash/",
    ],
)
@pytest.mark.parametrize("middleware", [True, False])
def test_server_errors_never_leak(url: str, middleware: bool, settings: Any) -> None:
    if not middleware:
        settings.MIDDLEWARE = []
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == 500
    assert "hunter2" not in response.content.decode()
    assert "debug" not in body_of(response)


# -- reporting -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/errors/raise/crash/",
        "/errors/plain/raise/crash/",
        "/errors/plain/async/crash/",
    ],
)
@pytest.mark.parametrize("middleware", [True, False])
def test_unexpected_exception_is_logged_once_with_traceback(
    url: str, middleware: bool, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if not middleware:
        settings.MIDDLEWARE = []
    with caplog.at_level(logging.INFO, logger="django.request"):
        Client(raise_request_exception=False).get(url)
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [("ERROR", f"Internal Server Error: {url}")] == [
        (r.levelname, r.getMessage()) for r in records
    ]
    assert records[0].exc_info is not None
    assert RuntimeError is records[0].exc_info[0]


def test_unexpected_exception_signals_the_test_client() -> None:
    # Django's test client re-raises what got_request_exception reports.
    with pytest.raises(RuntimeError, match="hunter2"):
        Client().get("/errors/raise/crash/")


@pytest.mark.parametrize(
    "url", ["/errors/raise/suspicious/", "/errors/plain/raise/suspicious/"]
)
def test_suspicious_operation_goes_to_the_security_logger(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="django"):
        Client().get(url)
    records = [r for r in caplog.records if r.name.startswith("django.")]
    assert [(r.name, r.levelname) for r in records] == [
        ("django.security.SuspiciousOperation", "ERROR")
    ]


@pytest.mark.parametrize(
    "url", ["/errors/raise/not-found/", "/errors/raise/unavailable/"]
)
def test_expected_errors_are_not_reported_as_exceptions(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="django.request"):
        Client().get(url)  # would raise if got_request_exception were sent
    assert [r.exc_info for r in caplog.records if r.name == "django.request"] == [None]


@pytest.mark.parametrize(
    "url",
    [
        "/errors/raise/crash/",
        "/errors/plain/raise/crash/",
        "/errors/plain/async/crash/",
    ],
)
@pytest.mark.parametrize("middleware", [True, False])
def test_sentry_sees_an_unexpected_exception_once(
    url: str, middleware: bool, settings: Any
) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.transport import Transport

    events: list[dict[str, Any]] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            events.extend(
                item.payload.json for item in envelope.items if item.type == "event"
            )

    if not middleware:
        settings.MIDDLEWARE = []
    sentry_sdk.init(
        dsn="https://key@sentry.invalid/1",
        integrations=[DjangoIntegration()],
        transport=Capture,
        default_integrations=False,
    )
    try:
        Client(raise_request_exception=False).get(url)
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
    assert [
        [value["type"] for value in event["exception"]["values"]] for event in events
    ] == [["RuntimeError"]]


# -- the Problem API -----------------------------------------------------------


def test_problem_carries_its_members() -> None:
    problem = Problem(
        409,
        "insufficient_stock",
        type="https://errors.example.com/insufficient_stock",
        title="Not enough stock.",
        detail="Only 2 left.",
        headers={"Retry-After": "5"},
        available=2,
    )
    assert problem.status_code == 409
    assert problem.code == "insufficient_stock"
    assert problem.title == "Not enough stock."
    assert str(problem.detail) == "Only 2 left."
    assert problem.headers == {"Retry-After": "5"}
    assert problem.extensions == {"available": 2}
    assert problem.errors is None
    assert problem.type == "https://errors.example.com/insufficient_stock"


def test_a_problem_without_a_type_takes_no_title() -> None:
    with pytest.raises(ValueError, match="about:blank is titled with the HTTP"):
        Problem(409, "insufficient_stock", title="Not enough stock.")
    with pytest.raises(ValueError, match="put it in detail"):
        Problem(409, "insufficient_stock", title="Conflict", type="about:blank")
    with pytest.raises(ValueError, match="'Too poor.' a type URI"):
        Problem.invalid({"amount": ["Too much."]}, title="Too poor.")
    assert Problem(409, "insufficient_stock", detail="Not enough stock.").title is None


def test_a_titled_problem_needs_a_type_uri() -> None:
    typed = Problem(409, "stock", title="Not enough stock.", type="urn:shop:stock")
    assert (typed.type, typed.title) == ("urn:shop:stock", "Not enough stock.")
    with override_settings(
        MICROKIT={"ERRORS": {"TYPE_BASE_URI": "https://errors.example.com/"}}
    ):
        derived = Problem.invalid({}, title="Too poor.")
        assert derived.title == "Too poor."
        with pytest.raises(ValueError, match="about:blank"):
            Problem(409, "stock", title="Not enough stock.", type="about:blank")


@pytest.mark.parametrize("base", ["", "https://errors.example.com/"])
def test_an_about_blank_problem_is_titled_with_the_reason_phrase(base: str) -> None:
    """RFC 9457 §4.2.1: ``type="about:blank"`` given outright titles as the
    derived one does, ``TYPE_BASE_URI`` or not."""
    request = RequestFactory().get("/orders/7/")
    with override_settings(MICROKIT={"ERRORS": {"TYPE_BASE_URI": base}}):
        exc = Problem(404, "not_found", type="about:blank")
        document = get_handler(exc, request).get_document(exc)
    assert (document["type"], document["title"]) == ("about:blank", "Not Found")


@pytest.mark.parametrize("status", [200, 302, 600])
def test_problem_needs_an_error_status(status: int) -> None:
    with pytest.raises(ValueError, match=str(status)):
        Problem(status, "nope")


@pytest.mark.parametrize("member", ["instance", "request_id"])
def test_problem_cannot_set_members_the_handler_owns(member: str) -> None:
    with pytest.raises(ValueError, match=member):
        extensions: dict[str, Any] = {member: "x"}
        Problem(400, "nope", **extensions)


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ((), ""),
        (("a",), "/a"),
        (("a/b", "0"), "/a~1b/0"),
        (("m~n",), "/m~0n"),
        (("~1",), "/~01"),
        (("",), "/"),
    ],
)
def test_json_pointer(path: tuple[str, ...], pointer: str) -> None:
    assert pointer == json_pointer(path)


@pytest.mark.parametrize(
    ("detail", "in_query", "items"),
    [
        ("Wrong.", False, [{"code": "invalid", "detail": "Wrong."}]),
        (
            {"size": ["Wrong."], "non_field_errors": ["Both."]},
            True,
            [
                {"code": "invalid", "detail": "Wrong.", "parameter": "size"},
                {"code": "invalid", "detail": "Both."},
            ],
        ),
        (
            [{}, {"name": ["Wrong."]}],
            False,
            [{"code": "invalid", "detail": "Wrong.", "pointer": "/1/name"}],
        ),
        (
            {"matrix": [[], ["Wrong."]]},
            False,
            [{"code": "invalid", "detail": "Wrong.", "pointer": "/matrix/1"}],
        ),
        (
            {"tags": {0: ["Wrong."]}},
            False,
            [{"code": "invalid", "detail": "Wrong.", "pointer": "/tags/0"}],
        ),
    ],
)
def test_error_items(detail: Any, in_query: bool, items: list[dict[str, str]]) -> None:
    assert items == error_items(detail, in_query=in_query)


def test_exception_handler_works_without_a_request() -> None:
    response = exception_handler(Problem(409, "conflicting"), {})
    assert body_of(response) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "The request could not be completed.",
        "code": "conflicting",
    }


class LoudHandler(ExceptionHandler):
    def get_document(self, problem: Problem) -> Any:
        return {**super().get_document(problem), "service": "tests"}


@pytest.mark.parametrize(
    "url", ["/errors/raise/not-found/", "/errors/plain/raise/http404/", "/nowhere/"]
)
def test_handler_class_is_pluggable(url: str) -> None:
    with override_settings(
        MICROKIT={"ERRORS": {"HANDLER_CLASS": "tests.test_errors.LoudHandler"}}
    ):
        body = body_of(Client().get(url))
    assert body["service"] == "tests"


def test_the_handler_class_follows_the_setting() -> None:
    assert get_handler_class() is ExceptionHandler
    with override_settings(
        MICROKIT={"ERRORS": {"HANDLER_CLASS": "tests.test_errors.LoudHandler"}}
    ):
        assert get_handler_class() is LoudHandler
        request = RequestFactory().get("/somewhere/")
        response = get_handler(Problem(409, "conflicting"), request).run()
        assert body_of(response)["service"] == "tests"
    assert get_handler_class() is ExceptionHandler


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (404, "Not Found"),
        (413, "Content Too Large"),
        (422, "Unprocessable Content"),
        (499, "Error"),
    ],
)
def test_reason_phrase_is_rfc_9110s(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase


#: The modules of each concern (in django_microkit), by the page documenting them.
PAGES = {
    "errors.md": "errors errors.checks errors.handler errors.middleware "
    "errors.problem errors.views openapi",
    "pagination.md": "pagination pagination.base pagination.checks "
    "pagination.cursor pagination.offset",
    "versioning.md": "versioning versioning.checks versioning.config "
    "versioning.middleware versioning.schema versioning.schemes versioning.views",
}


@pytest.mark.parametrize(
    ("page", "module"), [(p, m) for p, ms in PAGES.items() for m in ms.split()]
)
def test_every_public_name_is_documented(page: str, module: str) -> None:
    text = (Path(__file__).parent.parent / "docs" / page).read_text()
    names = import_module(f"django_microkit.{module}").__all__
    assert [n for n in names if not re.search(rf"\b{n}\b", text)] == []


def test_drf_is_wired_to_the_handler() -> None:
    assert (
        django_microkit.rest_framework_defaults()["EXCEPTION_HANDLER"]
        == "django_microkit.errors.exception_handler"
    )


def test_problem_is_a_public_name() -> None:
    assert django_microkit.Problem is Problem


# -- the database unavailable ------------------------------------------------

DATABASE_UNAVAILABLE_DETAIL = (
    "The service cannot reach its database right now; try again later."
)


@pytest.mark.parametrize("kind", ["database-down", "database-gone"])
@pytest.mark.parametrize(
    "prefix", ["/errors/raise/", "/errors/plain/raise/", "/errors/plain/async/"]
)
def test_database_unavailable_is_503_and_reported(
    prefix: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{prefix}{kind}/"
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = Client(raise_request_exception=False).get(url)
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert problem(
        503, "service_unavailable", DATABASE_UNAVAILABLE_DETAIL, url
    ) == body_of(response)
    assert b"hunter2" not in response.content
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.levelname for r in records] == ["ERROR"]
    assert records[0].exc_info is not None


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        (None, "Accept"),
        ("Origin", "Origin, Accept"),
        ("accept", "accept"),
    ],
)
def test_problem_response_varies_on_accept(vary: str | None, expected: str) -> None:
    # The content type follows Accept; a Vary of the problem's own is kept.
    problem = Problem(409, "conflict", headers={} if vary is None else {"Vary": vary})
    handler = ExceptionHandler(problem, {"request": None, "view": None})
    assert expected == handler.get_response(problem)["Vary"]
