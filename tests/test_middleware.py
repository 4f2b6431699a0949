"""MicrokitMiddleware: the three middleware in one, and Django's own error pages
as problem documents, with no error views configured."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.checks import run_checks
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponseBase
from django.test import AsyncClient, Client, override_settings
from django.urls import URLPattern, URLResolver, include, path

from django_microkit.middleware import MicrokitMiddleware

ONE = "django_microkit.middleware.MicrokitMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
RAISING = "tests.test_middleware.RaisingMiddleware"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
#: API clients, with the media type of the problem each gets: no ``Accept``, a
#: JSON client (Django's technical pages answer it in ``text/plain``), curl's
#: ``*/*`` (which prefers no type, so not HTML either).
API_CLIENTS = [
    ({}, "application/problem+json"),
    ({"Accept": "application/json"}, "application/json"),
    ({"Accept": "*/*"}, "application/problem+json"),
]
SERVER_ERROR_DETAIL = (
    "The server could not complete the request. "
    "Quote the request ID when reporting the problem."
)

#: The test URLconf without handler400 … handler500: Django's defaults answer.
urlpatterns: list[URLPattern | URLResolver] = [path("", include("tests.urls"))]

#: Exceptions RaisingMiddleware raises, by path.
MIDDLEWARE_RAISES: dict[str, Callable[[], Exception]] = {
    "/refuse/400/": lambda: SuspiciousOperation("Host 'evil' is not allowed"),
    "/refuse/403/": lambda: PermissionDenied("only on Tuesdays"),
    "/refuse/500/": lambda: RuntimeError("password=hunter2"),
}


class RaisingMiddleware:
    """Raises outside any view, where only Django's handler catches it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raises = MIDDLEWARE_RAISES.get(request.path)
        if raises is not None:
            raise raises()
        return self.get_response(request)


@pytest.fixture(autouse=True)
def _one_middleware(settings: Any) -> None:
    settings.MIDDLEWARE = [ONE, COMMON, CSRF, RAISING]
    settings.ROOT_URLCONF = __name__
    settings.CSRF_FAILURE_VIEW = "django.views.csrf.csrf_failure"  # the default


def send(mode: str, method: str, url: str, **kwargs: Any) -> Any:
    if mode == "wsgi":
        client = Client(raise_request_exception=False, enforce_csrf_checks=True)
        return getattr(client, method)(url, **kwargs)
    aclient = AsyncClient(raise_request_exception=False, enforce_csrf_checks=True)
    return async_to_sync(getattr(aclient, method))(url, **kwargs)


def problem_of(response: Any, media_type: str = "application/problem+json") -> Any:
    assert response["Content-Type"] == media_type
    assert "Accept" in response["Vary"]
    body: dict[str, Any] = json.loads(response.content)
    assert body.pop("request_id") == response["X-Request-ID"]
    return body


def problem(status: int, title: str, code: str, detail: str, url: str) -> Any:
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": url,
        "code": code,
    }


CASES = [
    (
        "get",
        "/nowhere/",
        problem(404, "Not Found", "not_found", "Not found.", "/nowhere/"),
    ),
    (
        "post",
        "/errors/plain/csrf/",
        problem(
            403,
            "Forbidden",
            "csrf_failed",
            "CSRF verification failed.",
            "/errors/plain/csrf/",
        ),
    ),
    (
        "get",
        "/errors/plain/raise/crash/",
        problem(
            500,
            "Internal Server Error",
            "server_error",
            SERVER_ERROR_DETAIL,
            "/errors/plain/raise/crash/",
        ),
    ),
    (
        "get",
        "/refuse/400/",
        problem(
            400,
            "Bad Request",
            "bad_request",
            "The request could not be understood.",
            "/refuse/400/",
        ),
    ),
    (
        "get",
        "/refuse/403/",
        problem(
            403,
            "Forbidden",
            "permission_denied",
            "You do not have permission to perform this action.",
            "/refuse/403/",
        ),
    ),
    (
        "get",
        "/refuse/500/",
        problem(
            500,
            "Internal Server Error",
            "server_error",
            SERVER_ERROR_DETAIL,
            "/refuse/500/",
        ),
    ),
]


@pytest.mark.parametrize(("headers", "media_type"), API_CLIENTS)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize(("method", "url", "expected"), CASES)
def test_djangos_own_errors_are_problems(
    method: str,
    url: str,
    expected: Any,
    mode: str,
    debug: bool,
    headers: dict[str, str],
    media_type: str,
    settings: Any,
) -> None:
    settings.DEBUG = debug
    response = send(mode, method, url, headers=headers)
    body = problem_of(response, media_type)
    debug_member = body.pop("debug", None)
    assert expected == body
    if debug and url == "/errors/plain/raise/crash/":
        assert debug_member["exception"] == "RuntimeError: password=hunter2"
    else:
        assert debug_member is None
        assert "hunter2" not in response.content.decode()


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize(("method", "url", "expected"), CASES)
def test_a_browser_gets_djangos_technical_pages_under_debug(
    method: str, url: str, expected: Any, mode: str, settings: Any
) -> None:
    settings.DEBUG = True
    response = send(mode, method, url, headers=BROWSER)
    assert (expected["status"], "text/html") == (
        response.status_code,
        response["Content-Type"].partition(";")[0],
    )
    assert response.has_header("X-Request-ID")


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_a_browser_gets_the_technical_page_of_a_drf_views_crash(
    mode: str, settings: Any
) -> None:
    """Under ``DEBUG`` only, as for a plain view; a deliberate error stays a
    problem, and an API client gets the problem with ``debug``."""
    settings.DEBUG = True
    response = send(mode, "get", "/errors/raise/crash/", headers=BROWSER)
    assert (response.status_code, response["Content-Type"].partition(";")[0]) == (
        500,
        "text/html",
    )
    assert response.has_header("X-Request-ID")
    body = problem_of(send(mode, "get", "/errors/raise/not-found/", headers=BROWSER))
    assert body["code"] == "not_found"
    body = problem_of(
        send(mode, "get", "/errors/raise/crash/", headers=API_CLIENTS[1][0]),
        API_CLIENTS[1][1],
    )
    assert body["debug"]["exception"] == "RuntimeError: password=hunter2"
    settings.DEBUG = False
    body = problem_of(send(mode, "get", "/errors/raise/crash/", headers=BROWSER))
    assert (body["code"], "debug" in body) == ("server_error", False)


@pytest.mark.parametrize(("method", "url", "expected"), CASES)
def test_a_browser_gets_problems_without_debug(
    method: str, url: str, expected: Any
) -> None:
    body = problem_of(send("wsgi", method, url, headers=BROWSER))
    assert expected == body


def test_the_html_fallback_keeps_djangos_pages_for_browsers(settings: Any) -> None:
    settings.MICROKIT = {"ERRORS": {"HTML_FALLBACK": True}}
    response = send("wsgi", "get", "/nowhere/", headers=BROWSER)
    assert (
        response.status_code,
        response["Content-Type"],
    ) == (404, "text/html; charset=utf-8")
    assert problem_of(send("wsgi", "get", "/nowhere/"))["code"] == "not_found"


def test_configured_error_views_still_answer(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.urls"
    settings.CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure"
    body = problem_of(send("wsgi", "post", "/errors/plain/csrf/"))
    # The view's precise reason, which Django's page no longer tells.
    assert body["detail"] == "CSRF cookie not set."


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_it_does_what_the_three_middleware_do(mode: str) -> None:
    response = send(
        mode, "get", "/versioning/default/echo/", headers={"X-Request-ID": "req-7"}
    )
    assert (response.status_code, response["X-Request-ID"]) == (200, "req-7")
    assert response.has_header("X-API-Version")
    response = send(mode, "get", "/errors/plain/post-only/")
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert problem_of(response)["code"] == "method_not_allowed"
    response = send(mode, "post", "/errors/orders", content_type="application/json")
    assert (response.status_code, response["Location"]) == (308, "/errors/orders/")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("headers", "media_type"), API_CLIENTS)
def test_a_url_without_its_slash_is_a_308(
    method: str, debug: bool, headers: dict[str, str], media_type: str, settings: Any
) -> None:
    """Under ``DEBUG`` ``CommonMiddleware`` raises rather than redirect a
    ``POST``; the 308 keeps the body, so it answers that too."""
    settings.DEBUG = debug
    response = send("wsgi", method, "/errors/orders", headers=headers)
    assert (response.status_code, response["Location"]) == (308, "/errors/orders/")
    assert problem_of(response, media_type)["code"] == "append_slash"


def test_a_browser_keeps_djangos_answer_to_a_url_without_its_slash(
    settings: Any,
) -> None:
    settings.DEBUG = True
    assert send("wsgi", "get", "/errors/orders", headers=BROWSER).status_code == 301
    response = send("wsgi", "post", "/errors/orders", headers=BROWSER)
    assert (response.status_code, response["Content-Type"].partition(";")[0]) == (
        500,
        "text/html",
    )


def test_other_responses_pass_untouched() -> None:
    response = send("wsgi", "get", "/errors/plain/view/")
    assert (response.status_code, response.content) == (200, b"ok")


def test_the_three_middleware_answer_as_before(settings: Any) -> None:
    """Without MicrokitMiddleware, Django's page of an unknown URL stays."""
    settings.MIDDLEWARE = [
        "django_microkit.request_id.RequestIDMiddleware",
        "django_microkit.errors.ProblemMiddleware",
        "django_microkit.versioning.VersionHeadersMiddleware",
    ]
    response = send("wsgi", "get", "/nowhere/")
    assert (
        response.status_code,
        response["Content-Type"].partition(";")[0],
    ) == (404, "text/html")


def test_it_is_a_request_id_middleware() -> None:
    from django_microkit.request_id import RequestIDMiddleware

    assert issubclass(MicrokitMiddleware, RequestIDMiddleware)


@pytest.mark.parametrize(
    "middleware",
    [[ONE], [ONE, COMMON, CSRF]],
)
def test_it_satisfies_the_checks_without_error_views(
    middleware: list[str], settings: Any
) -> None:
    settings.MIDDLEWARE = middleware
    ids = {message.id for message in run_checks()}
    assert (
        ids
        & {
            "django_microkit.W010",
            "django_microkit.W012",
            "django_microkit.W013",
            "django_microkit.W020",
            "django_microkit.W021",
            "django_microkit.W034",
            "django_microkit.E020",
        }
        == set()
    )


def test_it_is_checked_to_come_first(settings: Any) -> None:
    settings.MIDDLEWARE = [COMMON, ONE]
    assert "django_microkit.W021" in {message.id for message in run_checks()}


# -- the schema routes --------------------------------------------------------


@pytest.fixture
def schema_urls(settings: Any) -> Any:
    """``django_microkit.schema_urls`` as imported with drf-spectacular-sidecar
    installed (it decides its routes when imported); the suite's afterwards."""
    import django_microkit.schema_urls as module

    with override_settings(
        INSTALLED_APPS=[*settings.INSTALLED_APPS, "drf_spectacular_sidecar"]
    ):
        yield importlib.reload(module)
    importlib.reload(module)


def test_the_schema_routes(schema_urls: Any, settings: Any) -> None:
    settings.ROOT_URLCONF = "django_microkit.schema_urls"
    assert [p.name for p in schema_urls.urlpatterns] == ["schema", "docs"]
    assert send("wsgi", "get", "/api/schema/").status_code == 200
    page = send("wsgi", "get", "/api/docs/", headers=BROWSER).content.decode()
    assert (
        page.count('="drf_spectacular_sidecar/swagger-ui-dist/') == 4
    )  # no STATIC_URL
    assert "cdn" not in page.lower()


def test_swagger_ui_needs_the_sidecar() -> None:
    import django_microkit.schema_urls as module

    assert [p.name for p in module.urlpatterns] == ["schema"]
