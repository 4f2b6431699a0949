from __future__ import annotations

import datetime
import json
import platform
import time
from collections.abc import Callable
from typing import Any, cast

import django
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path

from django_microkit import __version__
from django_microkit.service_info import (
    check_service_info,
    service_info,
    service_info_urlpatterns,
)
from django_microkit.versioning.schema import SchemaView

BASE = {"SERVICE_NAME": "orders", "SERVICE_VERSION": "1.4.0"}
RUNTIME = {
    "python": platform.python_version(),
    "django": django.get_version(),
    "django_microkit": __version__,
}
#: What ``api`` says without ``MICROKIT["VERSIONING"]``.
DEFAULT_API = {
    "versions": ["1"],
    "retired": [],
    "default_version": "1",
    "deprecated": {},
}
UTC = datetime.timezone.utc

#: A URLconf with the schema route named as the service template names it.
urlpatterns = [
    path("", include("django_microkit.urls")),
    path("internal/schema/", SchemaView.as_view(), name="schema"),
]


@pytest.fixture(params=["wsgi", "asgi"])
def get(request: pytest.FixtureRequest) -> Callable[..., HttpResponse]:
    if request.param == "wsgi":
        return cast("Callable[..., HttpResponse]", Client().get)
    return cast("Callable[..., HttpResponse]", async_to_sync(AsyncClient().get))


def info(get: Callable[..., HttpResponse], **section: Any) -> dict[str, Any]:
    with override_settings(MICROKIT={**BASE, "SERVICE_INFO": section}):
        response = get("/.well-known/service-info")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-cache"
    return json.loads(response.content)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _no_build_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILD_ID", raising=False)
    monkeypatch.delenv("BUILD_COMMIT", raising=False)


def test_default_document(get: Callable[..., HttpResponse]) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        assert info(get) == {
            "name": "orders",
            "version": "1.4.0",
            "build": {"id": None, "commit": None},
            "api": DEFAULT_API,
            "openapi_url": "/internal/schema/",
            "runtime": RUNTIME,
        }


def test_openapi_url_follows_the_url_conf(get: Callable[..., HttpResponse]) -> None:
    def openapi_url() -> Any:
        return json.loads(get("/.well-known/service-info").content).get("openapi_url")

    with override_settings(MICROKIT=BASE):
        # The test URLconf has no route named "schema": no openapi_url.
        assert openapi_url() is None
        with override_settings(ROOT_URLCONF=__name__):
            assert openapi_url() == "/internal/schema/"
        assert openapi_url() is None
    with override_settings(ROOT_URLCONF=__name__):
        url = "https://api.example.com/openapi.json"
        assert info(get, OPENAPI_URL=url)["openapi_url"] == url
        assert "openapi_url" not in info(get, OPENAPI_URL=None)


def test_build_from_settings(get: Callable[..., HttpResponse]) -> None:
    document = info(get, BUILD="2024.06.1", COMMIT="9f1c2b7")
    assert document["build"] == {"id": "2024.06.1", "commit": "9f1c2b7"}


def test_build_from_environment(
    get: Callable[..., HttpResponse], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILD_ID", "812")
    monkeypatch.setenv("BUILD_COMMIT", "0a1b2c3")
    with override_settings(MICROKIT=BASE):
        first = get("/.well-known/service-info")
        # Built once: the environment of a running process does not change.
        monkeypatch.setenv("BUILD_ID", "813")
        assert get("/.well-known/service-info").content == first.content
    assert json.loads(first.content)["build"] == {"id": "812", "commit": "0a1b2c3"}
    monkeypatch.setenv("BUILD_ID", "812")
    # Settings win over the environment.
    assert info(get, COMMIT="fffffff")["build"] == {"id": "812", "commit": "fffffff"}


def test_optional_members(get: Callable[..., HttpResponse]) -> None:
    document = info(
        get,
        OPENAPI_URL=None,
        SHOW_RUNTIME=False,
        EXTRA={"team": "checkout", "name": "not-this"},
    )
    assert document == {
        "team": "checkout",
        "name": "orders",
        "version": "1.4.0",
        "build": {"id": None, "commit": None},
        "api": DEFAULT_API,
    }


def test_api_versions_when_versioning_is_configured(
    get: Callable[..., HttpResponse],
) -> None:
    versioning = {
        "VERSIONS": ["1", "2", "3"],
        "DEFAULT_VERSION": "2",
        "DEPRECATED": {
            "1": {"sunset": datetime.date(2999, 6, 30), "link": "https://x/1"},
            "2": {"sunset": None},
            "0": "ignored: not a dict",
        },
    }
    with override_settings(MICROKIT={**BASE, "VERSIONING": versioning}):
        response = get("/.well-known/service-info")
    assert json.loads(response.content)["api"] == {
        "versions": ["1", "2", "3"],
        "retired": [],
        "default_version": "2",
        "deprecated": {
            "1": {
                "deprecated_since": None,
                "sunset": "2999-06-30",
                "link": "https://x/1",
            },
            "2": {"deprecated_since": None, "sunset": None, "link": None},
        },
    }
    with override_settings(MICROKIT={**BASE}):
        assert service_info()["api"] == DEFAULT_API


def retiring(sunset: Any, **values: Any) -> Any:
    """Settings of versions 1 and 2, version 1 retiring at ``sunset``."""
    entry = {"deprecated_since": "2020-01-01", "sunset": sunset}
    versioning = {"VERSIONS": ["1", "2"], "DEFAULT_VERSION": "2"}
    return override_settings(
        MICROKIT={
            **BASE,
            "VERSIONING": {**versioning, "DEPRECATED": {"1": entry}, **values},
        }
    )


def test_a_version_past_its_sunset_is_retired(get: Callable[..., HttpResponse]) -> None:
    with retiring("2021-01-01"):
        api = json.loads(get("/.well-known/service-info").content)["api"]
    assert api["versions"] == ["2"]
    assert api["retired"] == ["1"]
    # Its dates still say when it was deprecated and retired.
    assert api["deprecated"]["1"]["sunset"] == "2021-01-01"
    # Served past its sunset, it is not retired.
    with retiring("2021-01-01", ENFORCE_SUNSET=False):
        assert service_info()["api"]["versions"] == ["1", "2"]
        assert service_info()["api"]["retired"] == []


def test_a_version_retires_while_the_document_is_served() -> None:
    sunset = datetime.datetime.now(UTC) + datetime.timedelta(seconds=1)
    with retiring(sunset.isoformat()):
        before = json.loads(Client().get("/.well-known/service-info").content)
        time.sleep(max(0.0, (sunset - datetime.datetime.now(UTC)).total_seconds()))
        after = json.loads(Client().get("/.well-known/service-info").content)
    assert (before["api"]["versions"], before["api"]["retired"]) == (["1", "2"], [])
    assert (after["api"]["versions"], after["api"]["retired"]) == (["2"], ["1"])


@pytest.mark.parametrize("method", ["post", "delete"])
def test_only_get_and_head(method: str) -> None:
    assert getattr(Client(), method)("/.well-known/service-info").status_code == 405
    assert Client().head("/.well-known/service-info").status_code == 200


def test_path_is_configurable() -> None:
    with override_settings(MICROKIT={**BASE, "SERVICE_INFO": {"PATH": "info"}}):
        assert [str(p.pattern) for p in service_info_urlpatterns()] == ["info"]


@pytest.mark.parametrize("path", ["", "/.well-known/service-info"])
def test_e047_path(path: str) -> None:
    from django.core.checks import run_checks

    with override_settings(MICROKIT={**BASE, "SERVICE_INFO": {"PATH": path}}):
        ids = [m.id for m in run_checks() if (m.id or "").startswith("django_micro")]
    assert ids == ["django_microkit.E047"]


def test_check_service_info() -> None:
    assert check_service_info() == []
    with override_settings(MICROKIT={**BASE, "SERVICE_INFO": {"PATH": ""}}):
        (message,) = check_service_info()
    assert (message.id, message.msg) == (
        "django_microkit.E047",
        "MICROKIT['SERVICE_INFO']['PATH'] is ''.",
    )


@pytest.mark.parametrize(
    ("openapi_url", "expected"),
    [
        ("/internal/schema/", []),
        ("/internal/schema/?format=json", []),
        ("https://api.example.com/openapi.json", []),
        ("", []),
        (None, []),
        ("/api/schema/", ["django_microkit.W043"]),
        ("internal/schema/", ["django_microkit.W043"]),
    ],
)
def test_w043_openapi_url_not_mounted(openapi_url: Any, expected: list[str]) -> None:
    section = {"OPENAPI_URL": openapi_url}
    with override_settings(
        ROOT_URLCONF=__name__, MICROKIT={**BASE, "SERVICE_INFO": section}
    ):
        found = check_service_info()
    assert [message.id for message in found] == expected
    if found:
        assert found[0].msg == (
            f"MICROKIT['SERVICE_INFO']['OPENAPI_URL'] is {openapi_url!r}, "
            "which no URL pattern serves."
        )
