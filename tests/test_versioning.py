from __future__ import annotations

import datetime
import email.utils
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import yaml
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from django_microkit.versioning import (
    BaseVersioning,
    HeaderVersioning,
    VersionHeadersMiddleware,
    resolve_version,
)
from django_microkit.versioning.config import parse_instant, version_table
from django_microkit.versioning.middleware import announce_version
from django_microkit.versioning.schemes import SOURCE_ACCEPT, SOURCE_HEADER
from tests.links import parse_links
from tests.testapp.models import Book

PROBLEM_JSON = "application/problem+json"
UTC = datetime.timezone.utc
FUTURE_SUNSET = datetime.date.today() + datetime.timedelta(days=400)
PAST_SUNSET = datetime.date.today() - datetime.timedelta(days=1)

VERSIONING: dict[str, Any] = {
    "VERSIONS": ["1", "2", "3"],
    "DEFAULT_VERSION": "2",
    "DEPRECATED": {
        "1": {
            "deprecated_since": "2025-01-31",
            "sunset": FUTURE_SUNSET.isoformat(),
            "link": "https://developer.example.com/v1-retirement",
        }
    },
}


def versioning(**changes: Any) -> Any:
    return override_settings(
        MICROKIT={"SERVICE_NAME": "tests", "VERSIONING": {**VERSIONING, **changes}}
    )


@pytest.fixture(autouse=True)
def _versions() -> Iterator[None]:
    with versioning():
        yield


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    # A client that accepts only application/json gets the problem as that.
    accept = response.wsgi_request.META.get("HTTP_ACCEPT", "")
    json_only = accept.startswith("application/json") and "," not in accept
    assert response["Content-Type"] == (
        "application/json" if json_only else PROBLEM_JSON
    )
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    return body


def vary(response: Any) -> set[str]:
    return set(re.split(r",\s*", response.get("Vary", ""))) - {""}


# --- negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "headers", "version"),
    [
        # Nothing asked: the default.
        ("/versioning/negotiated/echo/", {}, "2"),
        ("/versioning/accept/echo/", {}, "2"),
        ("/versioning/header/echo/", {}, "2"),
        ("/versioning/path/echo/", {}, "2"),
        ("/versioning/default/echo/", {}, "2"),
        # Swagger UI and browsers send Accept without a version.
        ("/versioning/accept/echo/", {"HTTP_ACCEPT": "application/json"}, "2"),
        ("/versioning/accept/echo/", {"HTTP_ACCEPT": "*/*"}, "2"),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"},
            "2",
        ),
        # The Accept parameter.
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json; version=3"},
            "3",
        ),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json;version=3"},
            "3",
        ),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": 'application/json; version="3"'},
            "3",
        ),
        ("/versioning/accept/echo/", {"HTTP_ACCEPT": "*/*; version=3"}, "3"),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json; q=0.9; Version=3"},
            "3",
        ),
        (
            "/versioning/negotiated/echo/",
            {"HTTP_ACCEPT": "application/json; version=3"},
            "3",
        ),
        # The header.
        ("/versioning/header/echo/", {"HTTP_X_API_VERSION": "3"}, "3"),
        ("/versioning/header/echo/", {"HTTP_X_API_VERSION": " 3 "}, "3"),
        ("/versioning/negotiated/echo/", {"HTTP_X_API_VERSION": "3"}, "3"),
        # Both, agreeing.
        (
            "/versioning/negotiated/echo/",
            {"HTTP_ACCEPT": "application/json; version=3", "HTTP_X_API_VERSION": "3"},
            "3",
        ),
        # Each scheme ignores the other's channel.
        ("/versioning/accept/echo/", {"HTTP_X_API_VERSION": "3"}, "2"),
        (
            "/versioning/header/echo/",
            {"HTTP_ACCEPT": "application/json; version=3"},
            "2",
        ),
        ("/versioning/v3/echo/", {"HTTP_X_API_VERSION": "1"}, "3"),
        # The URL path.
        ("/versioning/v3/echo/", {}, "3"),
    ],
)
def test_negotiation(
    client: APIClient, url: str, headers: dict[str, Any], version: str
) -> None:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content
    assert response["X-API-Version"] == version
    if response["Content-Type"] == "application/json":
        assert response.json() == {"version": version}
    else:  # the browsable API
        assert response["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("url", "headers", "vary_on"),
    [
        ("/versioning/negotiated/echo/", {}, {"Accept", "X-API-Version"}),
        ("/versioning/accept/echo/", {}, {"Accept"}),
        ("/versioning/header/echo/", {}, {"Accept", "X-API-Version"}),
        ("/versioning/v2/echo/", {}, {"Accept"}),
    ],
)
def test_responses_vary_on_the_negotiating_headers(
    client: APIClient, url: str, headers: dict[str, Any], vary_on: set[str]
) -> None:
    # DRF itself always varies on Accept.
    assert vary(client.get(url, **headers)) == vary_on


@pytest.mark.parametrize(
    ("url", "headers", "status", "vary_on"),
    [
        (
            "/versioning/negotiated/echo/",
            {"HTTP_X_API_VERSION": "9"},
            400,
            {"Accept", "X-API-Version"},
        ),
        (
            "/versioning/negotiated/echo/",
            {"HTTP_ACCEPT": "application/json; version=3", "HTTP_X_API_VERSION": "1"},
            400,
            {"Accept", "X-API-Version"},
        ),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json; version=9"},
            406,
            {"Accept"},
        ),
        (
            "/versioning/header/echo/",
            {"HTTP_X_API_VERSION": "9"},
            400,
            {"Accept", "X-API-Version"},
        ),
        ("/versioning/v9/echo/", {}, 400, {"Accept"}),
        (
            "/versioning/header/echo/",
            {"HTTP_X_API_VERSION": "0"},
            410,
            {"Accept", "X-API-Version"},
        ),
    ],
)
def test_refusals_vary_on_the_negotiating_headers(
    client: APIClient,
    url: str,
    headers: dict[str, Any],
    status: int,
    vary_on: set[str],
) -> None:
    retired = {"deprecated_since": "2020-01-01", "sunset": "2021-01-01"}
    with versioning(VERSIONS=["0", "1", "2", "3"], DEPRECATED={"0": retired}):
        response = client.get(url, **headers)
    assert response.status_code == status
    assert vary(response) == vary_on


def test_vary_is_set_where_drf_set_none(client: APIClient) -> None:
    # One renderer: DRF adds no Vary of its own.
    response = client.get("/versioning/json-only/echo/")
    assert response["Vary"] == "Accept, X-API-Version"
    refused = client.get("/versioning/json-only/echo/", HTTP_X_API_VERSION="9")
    assert refused.status_code == 400
    assert refused["Vary"] == "Accept, X-API-Version"


def test_a_scheme_reading_no_header_adds_no_vary() -> None:
    from django.test import RequestFactory

    def view(request: HttpRequest) -> HttpResponse:
        announce_version(request, "2")
        return HttpResponse()

    response = _sync(VersionHeadersMiddleware(view))(RequestFactory().get("/"))
    assert response["X-API-Version"] == "2"
    assert "Vary" not in response


@pytest.mark.parametrize(
    ("url", "headers", "status", "error"),
    [
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json; version=9"},
            406,
            {"header": "Accept"},
        ),
        (
            "/versioning/accept/echo/",
            {"HTTP_ACCEPT": "application/json; version="},
            406,
            {"header": "Accept"},
        ),
        (
            "/versioning/negotiated/echo/",
            {"HTTP_ACCEPT": "application/json; version=v2"},
            406,
            {"header": "Accept"},
        ),
        (
            "/versioning/header/echo/",
            {"HTTP_X_API_VERSION": "9"},
            400,
            {"header": "X-API-Version"},
        ),
        (
            "/versioning/header/echo/",
            {"HTTP_X_API_VERSION": ""},
            400,
            {"header": "X-API-Version"},
        ),
        (
            "/versioning/negotiated/echo/",
            {"HTTP_X_API_VERSION": "<script>"},
            400,
            {"header": "X-API-Version"},
        ),
        ("/versioning/v9/echo/", {}, 400, {}),
    ],
)
def test_unknown_versions_are_problems_listing_the_supported_ones(
    client: APIClient,
    url: str,
    headers: dict[str, Any],
    status: int,
    error: dict[str, str],
) -> None:
    body = assert_problem(client.get(url, **headers), status, "unsupported_version")
    body.pop("request_id", None)
    detail = "This API version is not supported. Supported versions: 1, 2, 3."
    assert body == {
        "type": "about:blank",
        "title": "Bad Request" if status == 400 else "Not Acceptable",
        "status": status,
        "detail": detail,
        "instance": url,
        "code": "unsupported_version",
        "errors": [{"code": "unsupported_version", "detail": detail, **error}],
        "supported_versions": ["1", "2", "3"],
    }


def test_an_unsupported_version_response_names_no_version(client: APIClient) -> None:
    response = client.get("/versioning/header/echo/", HTTP_X_API_VERSION="9")
    assert "X-API-Version" not in response


def test_two_different_versions_are_a_conflict(client: APIClient) -> None:
    response = client.get(
        "/versioning/negotiated/echo/",
        HTTP_ACCEPT="application/json; version=3",
        HTTP_X_API_VERSION="1",
    )
    body = assert_problem(response, 400, "version_conflict")
    detail = "The request names more than one API version."
    assert body["errors"] == [
        {"code": "version_conflict", "detail": detail, "header": "Accept"},
        {"code": "version_conflict", "detail": detail, "header": "X-API-Version"},
    ]


# --- every response says its version -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/versioning/negotiated/echo/?fail=not_found", 404),
        ("/versioning/negotiated/echo/?fail=problem", 409),
        ("/versioning/v3/echo/?fail=not_found", 404),
        ("/versioning/negotiated/books/?cursor=bogus", 400),
    ],
)
def test_error_responses_say_their_version_too(
    client: APIClient, url: str, status: int
) -> None:
    response = client.get(url, HTTP_X_API_VERSION="3")
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM_JSON
    assert response["X-API-Version"] == "3"


@pytest.mark.django_db
def test_responses_outside_versioned_views_name_no_version(client: APIClient) -> None:
    response = client.get("/no/such/path/")
    assert response.status_code == 404
    assert "X-API-Version" not in response


def test_middleware_announces_in_async_mode_too() -> None:
    response = async_to_sync(AsyncClient().get)(
        "/versioning/negotiated/echo/", headers={"X-API-Version": "1"}
    )
    assert response.status_code == 200
    assert response["X-API-Version"] == "1"
    assert response["Deprecation"] == "@1738281600"


def test_middleware_announces_around_an_async_handler() -> None:
    from asgiref.sync import sync_to_async
    from django.test import RequestFactory

    from tests.testapp.versioning_views import Echo

    view = Echo.as_view(versioning_class=HeaderVersioning)

    async def handler(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await sync_to_async(view)(request)
        return response

    middleware = VersionHeadersMiddleware(handler)
    request = RequestFactory().get("/", headers={"X-API-Version": "1"})
    response = async_to_sync(middleware)(request)  # type: ignore[arg-type]  # async-capable
    assert response["X-API-Version"] == "1"
    assert response["Sunset"] == _sunset_http_date(FUTURE_SUNSET)


def test_middleware_follows_the_mode_of_the_handler_it_wraps() -> None:
    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert iscoroutinefunction(VersionHeadersMiddleware(async_view))
    assert not iscoroutinefunction(VersionHeadersMiddleware(sync_view))
    # A request no versioned view saw passes through untouched.
    response = VersionHeadersMiddleware(sync_view)(HttpRequest())
    assert isinstance(response, HttpResponse)
    assert "X-API-Version" not in response


# --- deprecation and sunset -----------------------------------------------------------


def _sunset_http_date(day: datetime.date) -> str:
    return email.utils.format_datetime(
        datetime.datetime.combine(day, datetime.time.min, UTC), usegmt=True
    )


def test_deprecated_version_headers(client: APIClient) -> None:
    response = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="1")
    assert response.status_code == 200
    assert response["X-API-Version"] == "1"
    assert response["Deprecation"] == "@1738281600"
    assert response["Sunset"] == _sunset_http_date(FUTURE_SUNSET)
    assert response["Link"] == (
        '<https://developer.example.com/v1-retirement>; rel="deprecation"'
    )
    # RFC 9745: an sf-date, "@" and seconds since the epoch.
    match = re.fullmatch(r"@(-?\d+)", response["Deprecation"])
    assert match is not None
    assert datetime.datetime.fromtimestamp(int(match[1]), UTC) == datetime.datetime(
        2025, 1, 31, tzinfo=UTC
    )
    # RFC 8594: an HTTP-date (IMF-fixdate).
    assert email.utils.parsedate_to_datetime(
        response["Sunset"]
    ) == datetime.datetime.combine(FUTURE_SUNSET, datetime.time.min, UTC)
    assert parse_links(response["Link"]) == {
        "deprecation": "https://developer.example.com/v1-retirement"
    }


def test_current_versions_carry_no_deprecation_headers(client: APIClient) -> None:
    response = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="3")
    assert {"Deprecation", "Sunset", "Link"}.isdisjoint(response.headers)


@pytest.mark.parametrize(
    ("entry", "headers"),
    [
        ({"deprecated_since": "2025-01-31"}, {"Deprecation": "@1738281600"}),
        (
            {
                "deprecated_since": datetime.date(2025, 1, 31),
                "sunset": None,
                "link": None,
            },
            {"Deprecation": "@1738281600"},
        ),
        (
            {
                "deprecated_since": "2025-01-31T12:00:00+02:00",
                "sunset": "2030-06-30T00:00:00Z",
            },
            {"Deprecation": "@1738317600", "Sunset": "Sun, 30 Jun 2030 00:00:00 GMT"},
        ),
        (
            {"deprecated_since": datetime.datetime(2025, 1, 31, 10, 0, tzinfo=UTC)},
            {"Deprecation": "@1738317600"},
        ),
        # Unreadable values (reported by the system checks) are left out.
        ({"deprecated_since": "soon", "sunset": 5, "link": "mailto:x"}, {}),
        ("2025-01-31", {}),
    ],
)
def test_deprecation_headers_follow_the_entry(
    client: APIClient, entry: Any, headers: dict[str, Any]
) -> None:
    with versioning(DEPRECATED={"3": entry}):
        response = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="3")
    assert response.status_code == 200
    assert {
        k: v for k, v in response.items() if k in {"Deprecation", "Sunset", "Link"}
    } == headers


def test_sunset_version_answers_410(client: APIClient) -> None:
    entry = {"deprecated_since": "2025-01-31", "sunset": PAST_SUNSET.isoformat()}
    with versioning(DEPRECATED={"1": entry}):
        response = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="1")
        body = assert_problem(response, 410, "version_sunset")
        body.pop("request_id", None)
        assert body == {
            "type": "about:blank",
            "title": "Gone",
            "status": 410,
            "detail": f"API version 1 was retired on {PAST_SUNSET.isoformat()}.",
            "instance": "/versioning/negotiated/echo/",
            "code": "version_sunset",
            "supported_versions": ["2", "3"],
        }
        assert response["X-API-Version"] == "1"
        assert response["Sunset"] == _sunset_http_date(PAST_SUNSET)
        # A retired version is no longer offered to clients asking for another.
        unknown = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="9")
        assert unknown.json()["supported_versions"] == ["2", "3"]
    with versioning(DEPRECATED={"1": entry}, ENFORCE_SUNSET=False):
        kept = client.get("/versioning/negotiated/echo/", HTTP_X_API_VERSION="1")
        assert kept.status_code == 200
        assert kept["Sunset"] == _sunset_http_date(PAST_SUNSET)


@pytest.mark.django_db
def test_deprecation_link_joins_the_pagination_links(client: APIClient) -> None:
    Book.objects.bulk_create(
        Book(
            title=f"b{i}", score=i, published=datetime.datetime(2024, 1, 1, tzinfo=UTC)
        )
        for i in range(5)
    )
    response = client.get(
        "/versioning/negotiated/books/?page_size=2", HTTP_X_API_VERSION="1"
    )
    links = parse_links(response["Link"])
    assert links == {
        "next": response.json()["next"],
        "deprecation": "https://developer.example.com/v1-retirement",
    }


# --- evolving a resource -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        ({"HTTP_X_API_VERSION": "1"}, ["id", "title"]),
        ({"HTTP_X_API_VERSION": "2"}, ["id", "title", "score"]),
        ({}, ["id", "title", "score"]),
        ({"HTTP_ACCEPT": "application/json; version=1"}, ["id", "title"]),
    ],
)
def test_serializer_follows_the_version(
    client: APIClient, headers: dict[str, Any], fields: list[str]
) -> None:
    Book.objects.create(
        title="b", score=1, published=datetime.datetime(2024, 1, 1, tzinfo=UTC)
    )
    response = client.get("/versioning/negotiated/books/", **headers)
    assert list(response.json()["results"][0]) == fields


@pytest.mark.django_db
def test_a_version_without_a_serializer_is_a_configuration_error(
    client: APIClient,
) -> None:
    assert (
        client.get("/versioning/strict/books/", HTTP_X_API_VERSION="2").status_code
        == 200
    )
    with pytest.raises(ImproperlyConfigured, match="no serializer for API version '3'"):
        client.get("/versioning/strict/books/", HTTP_X_API_VERSION="3")


def test_resolve_version() -> None:
    assert resolve_version(None) == "2"
    assert resolve_version("1") == "1"


# --- in code of the service's own -----------------------------------------------------


def test_the_version_table_follows_the_settings() -> None:
    table = version_table()
    assert (table.versions, table.default) == (("1", "2", "3"), "2")
    assert table.deprecated["1"].link == "https://developer.example.com/v1-retirement"
    assert table.active(["1", "2"]) == ["1", "2"]
    assert version_table() is table
    with versioning(VERSIONS=["2", "4"], DEPRECATED={"2": {"sunset": PAST_SUNSET}}):
        changed = version_table()
        assert (changed.versions, changed.active(changed.versions)) == (
            ("2", "4"),
            ["4"],
        )
        assert changed.deprecated["2"].headers[0][0] == "Sunset"
    assert version_table().versions == ("1", "2", "3")


def test_next_sunset_is_the_nearest_one_still_to_come() -> None:
    soon = FUTURE_SUNSET - datetime.timedelta(days=100)
    deprecated = {
        "1": {"deprecated_since": "2020-01-01", "sunset": PAST_SUNSET},
        "2": {"deprecated_since": "2020-01-01", "sunset": FUTURE_SUNSET},
        "3": {"deprecated_since": "2020-01-01", "sunset": soon},
    }
    with versioning(DEPRECATED=deprecated):
        assert version_table().next_sunset() == parse_instant(soon)
    with versioning(DEPRECATED=deprecated, ENFORCE_SUNSET=False):
        assert version_table().next_sunset() is None
    with versioning(DEPRECATED={}):
        assert version_table().next_sunset() is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-30", datetime.datetime(2026, 6, 30, tzinfo=UTC)),
        (" 2026-06-30T12:00:00Z ", datetime.datetime(2026, 6, 30, 12, tzinfo=UTC)),
        (
            "2026-06-30T14:00:00+02:00",
            datetime.datetime(2026, 6, 30, 12, tzinfo=UTC),
        ),
        (datetime.date(2026, 6, 30), datetime.datetime(2026, 6, 30, tzinfo=UTC)),
        (
            datetime.datetime(2026, 6, 30, 8),
            datetime.datetime(2026, 6, 30, 8, tzinfo=UTC),
        ),
    ],
)
def test_parse_instant(value: Any, expected: datetime.datetime) -> None:
    assert parse_instant(value) == expected


@pytest.mark.parametrize(("value", "error"), [(None, TypeError), ("soon", ValueError)])
def test_parse_instant_refuses_what_is_not_a_date(value: Any, error: type) -> None:
    with pytest.raises(error):
        parse_instant(value)


def test_a_scheme_of_ones_own_varies_on_its_sources() -> None:
    class EitherVersioning(BaseVersioning):
        sources = (SOURCE_HEADER, SOURCE_ACCEPT)

    assert EitherVersioning.vary == ("Accept", "X-API-Version")
    assert EitherVersioning.default_version == "2"


def test_a_plain_view_announces_its_version() -> None:
    from django.test import RequestFactory

    def view(request: HttpRequest) -> HttpResponse:
        announce_version(request, "1", ("X-API-Version",))
        return HttpResponse()

    response = _sync(VersionHeadersMiddleware(view))(RequestFactory().get("/"))
    assert response["X-API-Version"] == "1"
    assert response["Deprecation"] == "@1738281600"
    assert response["Vary"] == "X-API-Version"


def test_a_refusal_announces_only_the_headers_it_read() -> None:
    from django.test import RequestFactory

    def view(request: HttpRequest) -> HttpResponse:
        announce_version(request, None, ("Accept",))
        announce_version(request, None, ("X-API-Version",))
        return HttpResponse(status=400)

    response = _sync(VersionHeadersMiddleware(view))(RequestFactory().get("/"))
    assert "X-API-Version" not in response
    assert "Deprecation" not in response
    assert response["Vary"] == "Accept, X-API-Version"


# --- OpenAPI: one document per version ------------------------------------------------


def schema(client: APIClient, query: str = "", **headers: Any) -> dict[str, Any]:
    # What Swagger UI sends for the schema; drf-spectacular answers YAML.
    response = client.get(
        f"/versioning/schema/{query}",
        HTTP_ACCEPT="application/json, application/yaml",
        **headers,
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    document: dict[str, Any] = yaml.safe_load(response.content)
    validate(document)
    return document


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: item["get"] for path, item in document["paths"].items()}


@pytest.mark.parametrize(
    ("query", "headers", "version"),
    [
        ("?version=1", {}, "1"),
        ("?version=3", {}, "3"),
        ("", {}, "2"),
        ("", {"HTTP_X_API_VERSION": "1"}, "1"),
        ("?version=3", {"HTTP_X_API_VERSION": "1"}, "3"),
    ],
)
def test_schema_describes_the_asked_version(
    client: APIClient, query: str, headers: dict[str, Any], version: str
) -> None:
    response = client.get(
        f"/versioning/schema/{query}", HTTP_ACCEPT="application/json", **headers
    )
    assert response["X-API-Version"] == version
    # The default scheme read both headers, whatever ``?version=`` said.
    assert vary(response) == {"Accept", "X-API-Version"}
    document = response.json()
    validate(document)
    ops = operations(document)
    assert f"/versioning/v{version}/echo/" in ops
    assert {p for p in ops if re.match(r"/versioning/v\d/", p)} == {
        f"/versioning/v{version}/echo/",
        f"/versioning/v{version}/books/",
    }
    books = ops["/versioning/negotiated/books/"]["responses"]["200"]["content"]
    (media_type,) = books
    component = (
        "CursorPaginatedBookV1List" if version == "1" else "CursorPaginatedBookV2List"
    )
    assert books[media_type]["schema"] == {"$ref": f"#/components/schemas/{component}"}
    deprecated = {path: op.get("deprecated", False) for path, op in ops.items()}
    # An unversioned view appears in every document, never deprecated.
    assert deprecated.pop("/versioning/unversioned/echo/") is False
    assert set(deprecated.values()) == {version == "1"}


def test_schema_of_an_unknown_version_is_a_400_problem(client: APIClient) -> None:
    response = client.get("/versioning/schema/?version=9")
    body = assert_problem(response, 400, "unsupported_version")
    assert "X-API-Version" not in response
    assert body["errors"] == [
        {
            "code": "unsupported_version",
            "detail": body["detail"],
            "parameter": "version",
        }
    ]


def test_schema_documents_the_version_header(client: APIClient) -> None:
    def header(document: dict[str, Any], path: str) -> dict[str, Any] | None:
        for parameter in operations(document)[path].get("parameters", []):
            if parameter["name"] == "X-API-Version":
                assert parameter["in"] == "header"
                return dict(parameter)
        return None

    v1, v2 = schema(client, "?version=1"), schema(client, "?version=2")
    assert header(v1, "/versioning/header/echo/") == {
        "in": "header",
        "name": "X-API-Version",
        "schema": {"type": "string", "enum": ["1"], "default": "1"},
        "description": "The API version this document describes (1). "
        "Without it the service answers with version 2.",
        "required": True,
    }
    assert header(v1, "/versioning/default/echo/") is not None
    assert "required" not in header(v2, "/versioning/header/echo/")  # type: ignore[operator]
    assert "required" not in header(v1, "/versioning/negotiated/echo/")  # type: ignore[operator]
    assert header(v1, "/versioning/accept/echo/") is None
    assert header(v1, "/versioning/v1/echo/") is None
    assert header(v1, "/versioning/unversioned/echo/") is None


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/versioning/accept/echo/", ["200", "406", "410", "500"]),
        ("/versioning/header/echo/", ["200", "400", "406", "410", "500"]),
        ("/versioning/v1/echo/", ["200", "400", "406", "410", "500"]),
        ("/versioning/unversioned/echo/", ["200", "406", "500"]),
    ],
)
def test_schema_documents_version_problems(
    client: APIClient, path: str, statuses: list[str]
) -> None:
    assert (
        sorted(operations(schema(client, "?version=1"))[path]["responses"]) == statuses
    )
    # Version 3 has no sunset date: no 410.
    v3 = operations(schema(client, "?version=3"))
    path = path.replace("v1", "v3")
    assert sorted(v3[path]["responses"]) == [s for s in statuses if s != "410"]


def test_an_unknown_version_documents_only_unversioned_views() -> None:
    from drf_spectacular.generators import SchemaGenerator

    from tests.testapp.versioning_views import api_patterns

    generated = SchemaGenerator(patterns=api_patterns, api_version="9").get_schema(
        request=None, public=True
    )
    assert list(generated["paths"]) == ["/versioning/unversioned/echo/"]


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_swagger_ui_requests_get_the_documented_version(
    client: APIClient, version: str
) -> None:
    """Replays what Swagger UI sends: the page, the schema, then each operation."""
    page = client.get(
        f"/versioning/docs/?version={version}",
        HTTP_ACCEPT="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )
    assert page.status_code == 200
    schema_url = re.search(r'url: "([^"]+)"', page.content.decode())
    assert schema_url is not None
    url = schema_url[1].encode().decode("unicode_escape")
    assert url == f"/versioning/schema/?version={version}"
    document = schema(client, f"?version={version}")

    for path, operation in operations(document).items():
        if "unversioned" in path:
            continue
        headers: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and "default" in parameter["schema"]:
                headers["HTTP_" + parameter["name"].upper().replace("-", "_")] = (
                    parameter["schema"]["default"]
                )
        content = operation["responses"]["200"].get("content")
        headers["HTTP_ACCEPT"] = next(iter(content)) if content else "*/*"
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, headers, response.content)
        assert response["X-API-Version"] == version, (path, headers)
        # Without the optional header the UI still gets the documented version.
        if headers.get("HTTP_ACCEPT", "").endswith(f"version={version}"):
            headers.pop("HTTP_X_API_VERSION", None)
            if "/header/" not in path:
                assert client.get(path, **headers)["X-API-Version"] == version


# --- system checks ------------------------------------------------------------------


def check_messages(**overrides: Any) -> dict[str, Any]:
    from django.core.checks import run_checks

    with override_settings(**overrides):
        return {
            m.id: m for m in run_checks() if m.id and m.id.startswith("django_microkit")
        }


def with_versioning(**values: Any) -> dict[str, Any]:
    return {"SERVICE_NAME": "tests", "VERSIONING": {**VERSIONING, **values}}


def test_the_test_versioning_is_clean() -> None:
    assert check_messages(MICROKIT=with_versioning()) == {}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"VERSIONS": [], "DEPRECATED": {}},
            {"E034": "is empty", "E035": "'2' is not in"},
        ),
        ({"VERSIONS": ["1", "2", "3", "2"]}, {"E034": "repeats ['2']"}),
        (
            {"VERSIONS": ["1", "2", "3", "v 4"]},
            {"E034": "has invalid versions ['v 4']"},
        ),
        ({"VERSIONS": ["1", "2", "3", 4]}, {"E034": "has invalid versions [4]"}),
        (
            {"DEFAULT_VERSION": "4"},
            {"E035": "MICROKIT['VERSIONING']['DEFAULT_VERSION'] '4'"},
        ),
        (
            {"DEPRECATED": {"0": {"deprecated_since": "2025-01-01"}}},
            {"E036": "['DEPRECATED']['0']: version '0' is not in"},
        ),
        ({"DEPRECATED": {"1": "2025-01-01"}}, {"E037": "must be a dict, not str"}),
        ({"DEPRECATED": {"1": {}}}, {"E037": "has no 'deprecated_since' date"}),
        (
            {"DEPRECATED": {"1": {"deprecated_since": "2025-01-01", "sunet": None}}},
            {"E037": "has an unknown key 'sunet'"},
        ),
        (
            {"DEPRECATED": {"1": {"deprecated_since": "31/01/2025"}}},
            {"E037": "['deprecated_since'] is '31/01/2025', not an ISO 8601 date"},
        ),
        (
            {
                "DEPRECATED": {
                    "1": {"deprecated_since": "2025-01-01", "sunset": "next year"}
                }
            },
            {"E037": "['sunset'] is 'next year', not an ISO 8601 date"},
        ),
        (
            {"DEPRECATED": {"1": {"deprecated_since": "2025-01-01", "sunset": 2026}}},
            {"E037": "['sunset'] is 2026, not an ISO 8601 date"},
        ),
        (
            {
                "DEPRECATED": {
                    "1": {"deprecated_since": "2025-01-01", "link": "/docs/v1"}
                }
            },
            {"E037": "['link'] is '/docs/v1', not an absolute http(s) URL"},
        ),
        (
            {
                "DEPRECATED": {
                    "1": {"deprecated_since": "2025-06-01", "sunset": "2025-05-01"}
                }
            },
            {
                "E038": "the sunset date is before the deprecation date",
                "W037": "version '1' was retired on 2025-05-01",
            },
        ),
        (
            {
                "DEPRECATED": {
                    "1": {"deprecated_since": "2025-06-01", "sunset": "2025-06-01"}
                },
                "ENFORCE_SUNSET": False,
            },
            {},
        ),
        (
            {
                "DEPRECATED": {
                    "1": {"deprecated_since": "2020-01-01", "sunset": "2021-01-01"}
                }
            },
            {"W037": "['1']: version '1' was retired on 2021-01-01: every request"},
        ),
        (
            {
                "DEPRECATED": {
                    "2": {"deprecated_since": "2020-01-01", "sunset": "2021-01-01"}
                }
            },
            {"W033": "['DEFAULT_VERSION'] '2' is past its sunset"},
        ),
    ],
)
def test_versioning_checks(values: dict[str, Any], expected: dict[str, str]) -> None:
    found = check_messages(MICROKIT=with_versioning(**values))
    assert sorted(found) == sorted(f"django_microkit.{i}" for i in expected)
    for check_id, text in expected.items():
        assert text in found[f"django_microkit.{check_id}"].msg


def test_wrong_types_are_left_to_e003() -> None:
    found = check_messages(MICROKIT=with_versioning(VERSIONS="1", DEPRECATED=[]))
    assert list(found) == ["django_microkit.E003"]


def test_e037_suggests_the_near_key() -> None:
    entry = {"deprecated_since": "2025-01-01", "sunet": None}
    found = check_messages(MICROKIT=with_versioning(DEPRECATED={"1": entry}))
    assert "Did you mean 'sunset'?" in found["django_microkit.E037"].hint


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_past_sunset_is_fine_when_not_enforced(version: str) -> None:
    entry = {"deprecated_since": "2020-01-01", "sunset": "2021-01-01"}
    values = with_versioning(DEPRECATED={version: entry}, ENFORCE_SUNSET=False)
    assert check_messages(MICROKIT=values) == {}


def test_e038_is_an_error_citing_rfc_9745() -> None:
    entry = {"deprecated_since": "2999-06-01", "sunset": "2999-05-01"}
    found = check_messages(MICROKIT=with_versioning(DEPRECATED={"3": entry}))
    (message,) = found.values()
    assert message.is_serious()
    assert "RFC 9745 §4" in message.hint


@pytest.mark.parametrize(
    "scheme",
    [None, "rest_framework.versioning.AcceptHeaderVersioning", "no.such.Scheme"],
)
def test_w036_versioning_is_not_microkit(settings: Any, scheme: Any) -> None:
    rest_framework = {**settings.REST_FRAMEWORK, "DEFAULT_VERSIONING_CLASS": scheme}
    assert list(check_messages(REST_FRAMEWORK=rest_framework)) == [
        "django_microkit.W036"
    ]


def test_w034_middleware_missing(settings: Any) -> None:
    middleware = [m for m in settings.MIDDLEWARE if "VersionHeaders" not in m]
    assert list(check_messages(MIDDLEWARE=middleware)) == ["django_microkit.W034"]


@pytest.mark.parametrize(
    "key", ["DEFAULT_VERSION", "ALLOWED_VERSIONS", "VERSION_PARAM"]
)
def test_w035_drf_version_settings_are_ignored(settings: Any, key: str) -> None:
    rest_framework = {**settings.REST_FRAMEWORK, key: "1"}
    found = check_messages(REST_FRAMEWORK=rest_framework)
    assert list(found) == ["django_microkit.W035"]
    assert repr([key]) in found["django_microkit.W035"].msg


def _sync(
    middleware: VersionHeadersMiddleware,
) -> Callable[[HttpRequest], HttpResponse]:
    """The middleware as the plain call it is under WSGI (its type says both)."""
    return cast("Callable[[HttpRequest], HttpResponse]", middleware)
