"""django_microkit.testing.fake_service: a service faked without the network."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
from django.test import Client

from django_microkit.client import (
    ConflictError,
    NotFoundError,
    ServiceClient,
    ServiceConnectionError,
    ServiceTimeoutError,
    set_transport,
)
from django_microkit.testing import FakeService, fake_service


@pytest.fixture(autouse=True)
def _catalog_settings(settings: Any) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.MICROKIT = {
        "SERVICE_NAME": "orders",
        "SERVICES": {
            "catalog": {
                "BASE_URL": f"http://127.0.0.1:{port}/v1",
                "BACKOFF": 0,
                "BREAKER": {"FAILURES": 2},
            }
        },
    }


def test_answers_registered_routes_and_records_calls() -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.get("/api/products/7/", json={"id": 7})
        catalog.post("/api/products/7/reserve/", status=201, json={"reserved": 2})
        assert client.get("/api/products/7/", params={"x": "1"}) == {"id": 7}
        assert client.post("/api/products/7/reserve/", {"quantity": 2}) == {
            "reserved": 2
        }
    first, second = catalog.calls
    assert (first.method, first.path, first.query) == (
        "GET",
        "/api/products/7/",
        {"x": ["1"]},
    )
    assert first.headers["User-Agent"].startswith("orders django-microkit/")
    assert (second.method, second.json()) == ("POST", {"quantity": 2})


def test_answers_in_order_then_repeats_the_last() -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.get("/x/", status=503)
        catalog.get("/x/", json={"n": 1})
        catalog.get("/x/", json={"n": 2})
        assert client.get("/x/") == {"n": 1}  # 503 retried
        assert client.get("/x/") == {"n": 2}
        assert client.get("/x/") == {"n": 2}
    assert len(catalog.calls) == 4


def test_problem_and_text_answers() -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.put("/p/", status=409, problem={"code": "stale", "detail": "Reload."})
        catalog.delete("/p/", status=404, text="gone")
        with pytest.raises(ConflictError) as conflict:
            client.put("/p/", {})
        with pytest.raises(NotFoundError) as missing:
            client.delete("/p/")
    assert (conflict.value.code, conflict.value.title, conflict.value.detail) == (
        "stale",
        "Conflict",
        "Reload.",
    )
    assert conflict.value.problem == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "code": "stale",
        "detail": "Reload.",
    }
    assert missing.value.text == "gone"


@pytest.mark.parametrize(
    ("problem", "title"),
    [
        ({"code": "stale", "title": "Stale."}, "Conflict"),
        ({"code": "stale", "title": "Stale.", "type": "about:blank"}, "Conflict"),
        ({"code": "stale", "title": "Stale.", "type": "urn:shop:stale"}, "Stale."),
        ({"code": "stale", "type": "urn:shop:stale"}, "Conflict"),
    ],
)
def test_a_faked_problem_is_titled_as_the_handler_titles(
    problem: dict[str, str], title: str
) -> None:
    """Under ``about:blank`` the title is the reason phrase (RFC 9457 §4.2.1),
    as the library's own problems are: a title needs a type URI."""
    with fake_service("catalog") as catalog:
        catalog.put("/p/", status=409, problem=problem)
        with pytest.raises(ConflictError) as conflict:
            ServiceClient("catalog").put("/p/", {})
    assert conflict.value.title == title


@pytest.mark.parametrize(
    ("raises", "error"),
    [
        (requests.ConnectionError(), ServiceConnectionError),
        (requests.ReadTimeout(), ServiceTimeoutError),
    ],
)
def test_network_failures_and_the_breaker(
    raises: Exception, error: type[Exception]
) -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.patch("/p/", raises=raises)
        for _ in range(2):
            with pytest.raises(error):
                client.patch("/p/", {})
        assert client.breaker.state == "open"
    with fake_service("catalog"):
        state: str = client.breaker.state  # read afresh, not narrowed to "open"
        assert state == "closed"  # every fake starts afresh


def test_unregistered_route_fails_the_test() -> None:
    with fake_service("catalog") as catalog:
        catalog.get("/known/", json={})
        with pytest.raises(
            AssertionError, match=r"no answer for GET /other/ \(routes: GET /known/\)"
        ):
            ServiceClient("catalog").get("/other/")
        assert ServiceClient("catalog").breaker.state == "closed"


def test_without_the_fake_the_network_is_used_again() -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.get("/x/", json={})
        client.get("/x/")
    with pytest.raises(ServiceConnectionError):
        client.get("/x/", retries=0)


def test_a_view_calling_a_faked_service() -> None:
    with fake_service("catalog") as catalog:
        catalog.get("/api/products/1/", json={"id": 1, "price": "9.50"})
        catalog.get("/api/products/2/", status=404, problem={"code": "not_found"})
        found = Client().get("/client/products/1/")
        missing = Client().get("/client/products/2/")
    assert (found.status_code, found.json()) == (200, {"id": 1, "price": "9.50"})
    assert (missing.status_code, missing.json()) == (
        404,
        {"found": False, "code": "not_found"},
    )


def test_a_new_answer_replaces_one_already_repeating() -> None:
    client = ServiceClient("catalog")
    with fake_service("catalog") as catalog:
        catalog.get("/x/", json={"n": 1})
        assert client.get("/x/") == {"n": 1}
        assert client.get("/x/") == {"n": 1}
        catalog.get("/x/", json={"n": 2})
        catalog.get("/x/", json={"n": 3})
        assert [client.get("/x/") for _ in range(3)] == [{"n": 2}, {"n": 3}, {"n": 3}]


def test_a_transport_outlives_a_settings_change(settings: Any) -> None:
    client = ServiceClient("catalog")
    fake = FakeService("catalog")
    fake.get("/x/", json={"n": 1})
    set_transport("catalog", fake)
    try:
        assert client.get("/x/") == {"n": 1}
        settings.MICROKIT = {**settings.MICROKIT, "SERVICE_NAME": "billing"}
        assert client.get("/x/") == {"n": 1}
    finally:
        set_transport("catalog", None)
    assert [call.headers["User-Agent"].split()[0] for call in fake.calls] == [
        "orders",
        "billing",
    ]
    with pytest.raises(ServiceConnectionError):
        client.get("/x/", retries=0)
