"""``/.well-known/service-info``: what is deployed, in one small JSON document.

Name, version and build of the service, the API versions it serves, which are
deprecated and which retired, where its OpenAPI schema is, and the versions of
Python, Django and django-microkit it runs on. The document depends only on
settings, the URLconf, the environment and the next sunset, so it is built once
and served from memory until one of them changes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

import django
from django.core.checks import CheckMessage
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import NoReverseMatch, Resolver404, URLPattern, resolve, reverse

from django_microkit.checks import Issue
from django_microkit.conf import derived, microkit_settings
from django_microkit.health.views import server_mode_route
from django_microkit.versioning.config import version_table

__all__ = [
    "BUILD_COMMIT_ENV",
    "BUILD_ID_ENV",
    "ApiVersions",
    "BuildInfo",
    "DeprecatedVersion",
    "RuntimeInfo",
    "ServiceInfo",
    "async_service_info_view",
    "check_service_info",
    "service_info",
    "service_info_urlpatterns",
    "service_info_view",
]

#: Environment variables read when ``BUILD`` / ``COMMIT`` are not set.
BUILD_ID_ENV = "BUILD_ID"
BUILD_COMMIT_ENV = "BUILD_COMMIT"


class BuildInfo(TypedDict):
    """``build``: the build and commit deployed (``None`` when not known)."""

    id: str | None
    commit: str | None


class DeprecatedVersion(TypedDict):
    """One entry of ``api.deprecated``: the version's dates and its link."""

    deprecated_since: str | None
    sunset: str | None
    link: str | None


class ApiVersions(TypedDict):
    """``api``: the API versions served, retired, deprecated and the default."""

    versions: list[str]
    retired: list[str]
    default_version: str | None
    deprecated: dict[str, DeprecatedVersion]


class RuntimeInfo(TypedDict):
    """``runtime``: the versions of Python, Django and django-microkit."""

    python: str
    django: str
    django_microkit: str


class _ServiceInfoRequired(TypedDict):
    name: str
    version: str
    build: BuildInfo
    api: ApiVersions


class ServiceInfo(_ServiceInfoRequired, total=False):
    """The service-info document (``openapi_url`` when there is a schema,
    ``runtime`` unless ``SHOW_RUNTIME`` is off)."""

    openapi_url: str
    runtime: RuntimeInfo


def service_info() -> ServiceInfo:
    """The service-info document (the endpoint adds ``EXTRA`` members to it)."""
    section = microkit_settings.SERVICE_INFO
    info: ServiceInfo = {
        "name": microkit_settings.SERVICE_NAME,
        "version": microkit_settings.SERVICE_VERSION,
        "build": {
            "id": section["BUILD"] or os.environ.get(BUILD_ID_ENV) or None,
            "commit": section["COMMIT"] or os.environ.get(BUILD_COMMIT_ENV) or None,
        },
        "api": _api_versions(),
    }
    openapi_url = section["OPENAPI_URL"]
    if openapi_url == "":
        try:  # the schema route, named as in the service template
            openapi_url = reverse("schema")
        except NoReverseMatch:
            openapi_url = None
    if openapi_url is not None:
        info["openapi_url"] = openapi_url
    if section["SHOW_RUNTIME"]:
        from django_microkit import __version__

        info["runtime"] = {
            "python": platform.python_version(),
            "django": django.get_version(),
            "django_microkit": __version__,
        }
    return info


def _api_versions() -> ApiVersions:
    """The versions from ``MICROKIT["VERSIONING"]``: a version past its sunset
    answers 410, so it is listed as retired rather than served."""
    section = microkit_settings.VERSIONING
    deprecated = section["DEPRECATED"] or {}
    table = version_table()
    return {
        "versions": table.active(table.versions),
        "retired": [v for v in table.versions if table.sunset_passed(v)],
        "default_version": _optional_str(section["DEFAULT_VERSION"]),
        "deprecated": {
            str(version): {
                "deprecated_since": _optional_str(details.get("deprecated_since")),
                "sunset": _optional_str(details.get("sunset")),
                "link": _optional_str(details.get("link")),
            }
            for version, details in deprecated.items()
            if isinstance(details, Mapping)
        },
    }


def _optional_str(value: Any) -> str | None:
    if isinstance(value, datetime.date):  # a datetime too
        return value.isoformat()
    return None if value is None else str(value)


@derived(settings=("MICROKIT", "ROOT_URLCONF"))
def _document() -> tuple[bytes, datetime.datetime | None]:
    """The document as served, and the next sunset, when it changes."""
    # EXTRA adds members; it never replaces the standard ones.
    document = {**microkit_settings.SERVICE_INFO["EXTRA"], **service_info()}
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, version_table().next_sunset()


def _body() -> bytes:
    body, until = _document()
    if until is not None and datetime.datetime.now(datetime.timezone.utc) >= until:
        _document.reset()
        body, until = _document()
    return body


def _response(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    response = HttpResponse(_body(), content_type="application/json")
    response["Cache-Control"] = "no-cache"
    return response


def service_info_view(request: HttpRequest) -> HttpResponse:
    """The service-info document (served under WSGI)."""
    return _response(request)


async def async_service_info_view(request: HttpRequest) -> HttpResponse:
    """The service-info document (served under ASGI)."""
    return _response(request)


def service_info_urlpatterns() -> list[URLPattern]:
    """The service-info route at ``MICROKIT["SERVICE_INFO"]["PATH"]``, named
    ``microkit-service-info``; read when the URLconf is loaded."""
    route = microkit_settings.SERVICE_INFO["PATH"]
    views = (service_info_view, async_service_info_view)
    return [server_mode_route(route, *views, name="microkit-service-info")]


def check_service_info(**kwargs: Any) -> list[CheckMessage]:
    """``SERVICE_INFO["PATH"]`` is a Django route: with a leading slash it
    never matches, and empty it takes the site's root. An ``OPENAPI_URL`` that
    is a path of this service resolves: clients follow it to the schema."""
    section = microkit_settings.SERVICE_INFO
    path = section["PATH"]
    issues = []
    if isinstance(path, str) and (not path or path.startswith("/")):
        issues.append(
            Issue(
                "django_microkit.E047",
                f"MICROKIT['SERVICE_INFO']['PATH'] is {path!r}.",
                "Write it as Django routes are written, without a leading "
                "slash: '.well-known/service-info'.",
            )
        )
    openapi_url = section["OPENAPI_URL"]
    if isinstance(openapi_url, str) and openapi_url and _not_mounted(openapi_url):
        issues.append(
            Issue(
                "django_microkit.W043",
                f"MICROKIT['SERVICE_INFO']['OPENAPI_URL'] is {openapi_url!r}, "
                "which no URL pattern serves.",
                "Mount the schema view there, give the path it is mounted at "
                "(empty: the route named 'schema'), or None to advertise none.",
            )
        )
    return [issue.message() for issue in issues]


def _not_mounted(url: str) -> bool:
    """A path of this service (not an absolute URL elsewhere) that resolves to
    no view of the root URLconf."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return False
    try:
        resolve(parts.path)
    except Resolver404:
        return True
    return False
