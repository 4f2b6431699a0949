"""ServiceClient against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime, timezone
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import pytest
import requests
import structlog
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from structlog.contextvars import bind_contextvars, clear_contextvars

import django_microkit
from django_microkit.client import (
    CircuitOpenError,
    ClientError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    ServiceClient,
    ServiceConnectionError,
    ServiceError,
    ServiceTimeoutError,
    ServiceUnavailableError,
)
from django_microkit.client.errors import TEXT_LIMIT, parse_retry_after
from tests.conftest import LogLines
from tests.scripted_server import (  # noqa: F401
    Reply,
    ScriptedServer,
    catalog_fixture,
    configure_fixture,
    server_fixture,
)

# --------------------------------------------------------------------------
# Calls and answers
# --------------------------------------------------------------------------


def test_get_returns_the_parsed_body(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/api/products/7/", Reply(json={"id": 7, "name": "Lamp"}))
    assert catalog.get("/api/products/7/", params={"fields": "name"}) == {
        "id": 7,
        "name": "Lamp",
    }
    assert [r.path for r in server.hits()] == ["/api/products/7/?fields=name"]


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_body_methods_send_json(
    catalog: ServiceClient,
    server: ScriptedServer,
    method: str,
) -> None:
    server.script("/api/items/", Reply(201, {"created": True}))
    assert getattr(catalog, method)("/api/items/", {"sku": "A-1"}) == {"created": True}
    received = server.hits()[0]
    assert (received.method, received.body) == (method.upper(), b'{"sku": "A-1"}')
    assert received.header("Content-Type") == "application/json"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(204), None), (Reply(200, body=b""), None)],
)
def test_empty_answers_are_none(
    catalog: ServiceClient,
    server: ScriptedServer,
    reply: Reply,
    expected: Any,
) -> None:
    server.script("/api/items/1/", reply)
    assert catalog.delete("/api/items/1/") is expected


def test_raw_gives_the_response(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/", Reply(200, {"a": 1}, headers={"ETag": '"v1"'}))
    response = catalog.request("get", "", raw=True)
    assert isinstance(response, requests.Response)
    assert response.headers["ETag"] == '"v1"'
    assert response.json() == {"a": 1}


def test_head_request(catalog: ServiceClient, server: ScriptedServer) -> None:
    server.script("/api/items/", Reply(200, {"big": "body"}))
    assert catalog.request("HEAD", "/api/items/") is None


def test_base_url_path_is_kept(configure: Any, server: ScriptedServer) -> None:
    client = configure(BASE_URL=f"{server.url}/v1/")
    server.script("/v1/api/items/", Reply(json=[1]))
    assert client.get("api/items/") == [1]


def test_absolute_url_must_be_under_base_url(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/api/items/", Reply(json=[1]))
    assert catalog.get(f"{server.url}/api/items/") == [1]
    with pytest.raises(ValueError, match="is not under catalog"):
        catalog.get("http://evil.example/api/items/")
    assert len(server.hits()) == 1


def test_success_that_is_not_json(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/", Reply(200, body=b"<html>hello</html>"))
    with pytest.raises(InvalidResponseError) as caught:
        catalog.get("/")
    assert (caught.value.status, caught.value.code) == (200, "invalid_response")


def test_clients_of_a_service_share_session_and_breaker(catalog: ServiceClient) -> None:
    other = ServiceClient("catalog")
    assert other.session is catalog.session
    assert other.breaker is catalog.breaker
    assert repr(other) == "ServiceClient('catalog')"


def test_settings_change_gives_a_new_session(configure: Any) -> None:
    first = configure()
    session = first.session
    second = configure(POOL_SIZE=3)
    assert second.session is not session
    assert second.config.pool_size == 3


def test_unknown_service_is_improperly_configured(catalog: ServiceClient) -> None:
    with pytest.raises(ImproperlyConfigured, match="no entry 'nope'"):
        ServiceClient("nope").get("/")


def test_invalid_entry_is_refused_at_the_first_call(configure: Any) -> None:
    client = configure(RETRIES=-1)
    with pytest.raises(ImproperlyConfigured, match="RETRIES"):
        client.get("/")


def test_thread_safe_under_concurrent_calls(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/n/", Reply(json={"ok": True}, delay=0.02))
    results: list[Any] = []

    def call() -> None:
        results.append(catalog.get("/n/"))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"ok": True}] * 12


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


def test_every_call_names_its_caller(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/", Reply(json={}))
    catalog.get("/")
    received = server.hits()[0]
    assert received.header("User-Agent") == (
        f"orders/2.1.0 django-microkit/{django_microkit.__version__}"
    )
    assert received.header("Accept") == "application/json"
    assert received.header("Cookie") is None


def test_a_cookie_set_by_the_service_is_not_kept(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    setting = Reply(json={}, headers={"Set-Cookie": "session=abc; Path=/"})
    server.script("/", setting, Reply(json={}))
    catalog.get("/")
    catalog.get("/")
    assert [hit.header("Cookie") for hit in server.hits()] == [None, None]
    assert list(catalog.session.cookies) == []


def test_a_session_given_a_policy_of_its_own_keeps_cookies(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    setting = Reply(json={}, headers={"Set-Cookie": "session=abc; Path=/"})
    server.script("/", setting, Reply(json={}))
    catalog.session.cookies.set_policy(DefaultCookiePolicy())
    catalog.get("/")
    catalog.get("/")
    assert [hit.header("Cookie") for hit in server.hits()] == [None, "session=abc"]


@pytest.mark.parametrize(
    ("microkit", "expected"),
    [
        ({"SERVICE_NAME": "orders"}, "orders django-microkit/"),
        ({}, "django-microkit/"),
    ],
)
def test_user_agent_without_version_or_name(
    server: ScriptedServer,
    settings: Any,
    microkit: dict[str, Any],
    expected: str,
) -> None:
    settings.MICROKIT = {**microkit, "SERVICES": {"catalog": {"BASE_URL": server.url}}}
    server.script("/", Reply(json={}))
    ServiceClient("catalog").get("/")
    assert server.hits()[0].header("User-Agent") == (
        expected + django_microkit.__version__
    )


def test_caller_headers_win(catalog: ServiceClient, server: ScriptedServer) -> None:
    server.script("/", Reply(json={}))
    catalog.get(
        "/",
        headers={
            "accept": "application/problem+json",  # a default's
            "x-request-id": "chosen",  # a header provider's
            "X-Extra": "1",
        },
    )
    received = server.hits()[0]
    assert received.all("Accept") == ["application/problem+json"]
    assert received.all("X-Request-ID") == ["chosen"]
    assert received.header("X-Extra") == "1"


# --------------------------------------------------------------------------
# Timeouts and deadline
# --------------------------------------------------------------------------


def test_read_timeout(configure: Any, server: ScriptedServer) -> None:
    client = configure(TIMEOUT=(0.5, 0.1), RETRIES=1)
    server.script("/slow/", Reply(json={}, delay=0.4))
    started = time.monotonic()
    with pytest.raises(ServiceTimeoutError) as caught:
        client.get("/slow/")
    assert time.monotonic() - started < 0.8
    assert (caught.value.status, caught.value.code) == (None, "timeout")
    assert isinstance(caught.value.__cause__, requests.ReadTimeout)
    assert len(server.hits()) == 2


@pytest.mark.parametrize("timeout", [None])
def test_no_timeout_is_refused(catalog: ServiceClient, timeout: Any) -> None:
    with pytest.raises(TypeError, match="needs a timeout"):
        catalog.get("/", timeout=timeout)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "Timeouts must be > 0"),
        ({"timeout": (1, -1)}, "Timeouts must be > 0"),
        ({"deadline": 0}, "deadline must be > 0"),
        ({"deadline": float("inf")}, "deadline must be > 0"),
        ({"deadline": float("nan")}, "deadline must be > 0"),
        ({"timeout": (1, float("inf"))}, "Timeouts must be > 0"),
        ({"retries": -1}, "retries must be >= 0"),
    ],
)
def test_invalid_per_call_limits(
    catalog: ServiceClient, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.get("/", **kwargs)


def test_per_call_timeout(catalog: ServiceClient, server: ScriptedServer) -> None:
    server.script("/slow/", Reply(json={"late": True}, delay=0.3))
    with pytest.raises(ServiceTimeoutError):
        catalog.get("/slow/", timeout=0.1, retries=0)
    assert catalog.get("/slow/", timeout=(0.5, 1.0)) == {"late": True}


def test_deadline_cuts_a_slow_answer(configure: Any, server: ScriptedServer) -> None:
    client = configure(TIMEOUT=(1.0, 2.0), DEADLINE=0.25)
    server.script("/slow/", Reply(json={}, delay=0.6))
    started = time.monotonic()
    with pytest.raises(ServiceTimeoutError) as caught:
        client.get("/slow/")
    assert time.monotonic() - started < 0.5
    assert caught.value.code == "deadline_exceeded"
    assert len(server.hits()) == 1


def test_deadline_leaves_no_room_for_a_retry(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(BACKOFF=0.6, BACKOFF_MAX=0.6, DEADLINE=0.3)
    server.script("/busy/", Reply(503))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        client.get("/busy/")
    assert time.monotonic() - started < 0.25
    assert len(server.hits()) == 1


def test_retries_stop_at_the_deadline(configure: Any, server: ScriptedServer) -> None:
    client = configure(RETRIES=50, BACKOFF=0.05, BACKOFF_MAX=0.05, DEADLINE=0.4)
    server.script("/busy/", Reply(503))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        client.get("/busy/")
    assert time.monotonic() - started < 0.6
    assert 3 <= len(server.hits()) < 20


# --------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retried_statuses(
    catalog: ServiceClient,
    server: ScriptedServer,
    status: int,
) -> None:
    server.script("/flaky/", Reply(status), Reply(status), Reply(json={"ok": 1}))
    assert catalog.get("/flaky/") == {"ok": 1}
    hits = server.hits()
    assert len(hits) == 3
    # backoff: 0.02 then 0.04 seconds, each at least half of it with jitter
    assert hits[1].at - hits[0].at >= 0.01
    assert hits[2].at - hits[1].at >= 0.02


@pytest.mark.parametrize("status", [400, 404, 409, 500, 501])
def test_other_statuses_are_not_retried(
    catalog: ServiceClient,
    server: ScriptedServer,
    status: int,
) -> None:
    server.script("/x/", Reply(status))
    with pytest.raises(ServiceError):
        catalog.get("/x/")
    assert len(server.hits()) == 1


def test_retries_exhausted_raise_the_last_answer(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/busy/", Reply(503, body=b"upstream busy"))
    with pytest.raises(ServiceUnavailableError) as caught:
        catalog.get("/busy/")
    assert (caught.value.status, caught.value.text) == (503, "upstream busy")
    assert len(server.hits()) == 3


def test_connection_refused_is_retried_then_raised(
    configure: Any, settings: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = configure(BASE_URL=f"http://127.0.0.1:{port}")
    with pytest.raises(ServiceConnectionError) as caught:
        client.get("/")
    assert caught.value.code == "connection_error"
    assert isinstance(caught.value, ServiceUnavailableError)


def test_dropped_connection_is_retried(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/drop/", Reply(drop=True), Reply(json={"ok": True}))
    assert catalog.get("/drop/") == {"ok": True}
    assert len(server.hits()) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_calls_are_not_retried(
    catalog: ServiceClient,
    server: ScriptedServer,
    method: str,
) -> None:
    server.script("/orders/", Reply(503))
    with pytest.raises(ServiceUnavailableError):
        catalog.request(method, "/orders/", json={})
    assert len(server.hits()) == 1
    assert server.hits()[0].header("Idempotency-Key") is None


def test_idempotent_true_adds_one_key_for_all_attempts(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/orders/", Reply(503), Reply(201, {"id": 1}))
    assert catalog.post("/orders/", {"a": 1}, idempotent=True) == {"id": 1}
    keys = [r.header("Idempotency-Key") for r in server.hits()]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert keys[0] is not None and len(keys[0]) == 36


def test_callers_idempotency_key_allows_retries(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/orders/", Reply(502), Reply(201, {"id": 1}))
    catalog.post("/orders/", {"a": 1}, headers={"idempotency-key": "k-1"})
    assert [r.all("Idempotency-Key") for r in server.hits()] == [["k-1"], ["k-1"]]


def test_idempotent_false_turns_retries_off(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/x/", Reply(503))
    with pytest.raises(ServiceUnavailableError):
        catalog.get("/x/", idempotent=False)
    assert len(server.hits()) == 1


def test_per_call_retries(catalog: ServiceClient, server: ScriptedServer) -> None:
    server.script("/x/", Reply(503))
    with pytest.raises(ServiceUnavailableError):
        catalog.get("/x/", retries=4)
    assert len(server.hits()) == 5


def test_retry_after_seconds_is_honoured(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRY_AFTER_MAX=1)
    server.script(
        "/limited/",
        Reply(429, headers={"Retry-After": "1"}),
        Reply(json={"ok": True}),
    )
    assert client.get("/limited/") == {"ok": True}
    hits = server.hits()
    assert hits[1].at - hits[0].at >= 0.95


def test_retry_after_http_date_is_honoured(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRY_AFTER_MAX=2)
    when = datetime.fromtimestamp(time.time() + 1.2, timezone.utc)
    date = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    server.script(
        "/limited/",
        Reply(503, headers={"Retry-After": date}),
        Reply(json={"ok": True}),
    )
    assert client.get("/limited/") == {"ok": True}
    hits = server.hits()
    # whole seconds in the date: somewhere between 0.2 and 1.2 s from now
    assert hits[1].at - hits[0].at >= 0.1


def test_retry_after_above_the_cap_is_not_waited_for(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRY_AFTER_MAX=1)
    server.script("/limited/", Reply(429, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        client.get("/limited/")
    assert time.monotonic() - started < 0.5
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert len(server.hits()) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 -0000", 10.0),
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert parse_retry_after(value, now=now) == expected


# --------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------


def test_breaker_opens_fails_fast_half_opens_and_closes(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRIES=0, BREAKER={"FAILURES": 2, "COOL_DOWN": 0.3})
    server.script("/p/", Reply(503), Reply(503), Reply(json={"ok": True}))
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            client.get("/p/")
    assert client.breaker.state == "open"
    started = time.monotonic()
    with pytest.raises(CircuitOpenError) as caught:
        ServiceClient("catalog").get("/p/")
    assert time.monotonic() - started < 0.05
    assert len(server.hits()) == 2  # not sent
    assert caught.value.code == "circuit_open"
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 0.3
    time.sleep(0.35)
    assert client.breaker.state == "half_open"
    assert client.get("/p/") == {"ok": True}
    assert client.breaker.state == "closed"


def test_failed_trial_opens_the_breaker_again(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRIES=0, BREAKER={"FAILURES": 1, "COOL_DOWN": 0.2})
    server.script("/p/", Reply(500))
    with pytest.raises(ServiceUnavailableError):
        client.get("/p/")
    time.sleep(0.25)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.get("/p/")
    assert caught.value.status == 500  # the trial was sent
    assert client.breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        client.get("/p/")
    assert len(server.hits()) == 2


def test_half_open_lets_one_trial_through(
    configure: Any,
    server: ScriptedServer,
) -> None:
    client = configure(RETRIES=0, BREAKER={"FAILURES": 1, "COOL_DOWN": 0.1})
    server.script("/p/", Reply(503), Reply(json={"ok": True}, delay=0.3))
    with pytest.raises(ServiceUnavailableError):
        client.get("/p/")
    time.sleep(0.15)
    results: list[Any] = []
    trial = threading.Thread(target=lambda: results.append(client.get("/p/")))
    trial.start()
    while len(server.hits()) < 2:
        time.sleep(0.01)
    with pytest.raises(CircuitOpenError):
        client.get("/p/")
    trial.join()
    assert results == [{"ok": True}]
    assert client.breaker.state == "closed"
    assert len(server.hits()) == 2


def test_breaker_stops_retries(configure: Any, server: ScriptedServer) -> None:
    client = configure(RETRIES=5, BREAKER={"FAILURES": 2, "COOL_DOWN": 5})
    server.script("/p/", Reply(503))
    with pytest.raises(CircuitOpenError):
        client.get("/p/")
    assert len(server.hits()) == 2


@pytest.mark.parametrize("status", [400, 404, 429])
def test_client_errors_do_not_count_as_failures(
    configure: Any,
    server: ScriptedServer,
    status: int,
) -> None:
    client = configure(RETRIES=0, BREAKER={"FAILURES": 2})
    server.script("/p/", Reply(503), Reply(status), Reply(503), Reply(status))
    for _ in range(4):
        with pytest.raises(ServiceError):
            client.get("/p/")
    assert client.breaker.state == "closed"


def test_timeouts_count_as_failures(configure: Any, server: ScriptedServer) -> None:
    client = configure(TIMEOUT=0.05, RETRIES=0, BREAKER={"FAILURES": 1})
    server.script("/p/", Reply(json={}, delay=0.2))
    with pytest.raises(ServiceTimeoutError):
        client.get("/p/")
    assert client.breaker.state == "open"


# --------------------------------------------------------------------------
# Error answers become typed exceptions
# --------------------------------------------------------------------------

PROBLEM = {
    "type": "about:blank",
    "title": "Invalid input.",
    "status": 400,
    "detail": "The request body did not pass validation.",
    "code": "validation_error",
    "request_id": "remote-1",
    "errors": [{"code": "required", "detail": "Required.", "pointer": "/sku"}],
}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ClientError),
        (401, ClientError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ClientError),
        (500, ServiceUnavailableError),
        (503, ServiceUnavailableError),
    ],
)
def test_problem_answers_become_typed_errors(
    configure: Any,
    server: ScriptedServer,
    status: int,
    cls: type[ServiceError],
) -> None:
    client = configure(RETRIES=0)
    server.script(
        "/p/",
        Reply(
            status,
            {**PROBLEM, "status": status, "available": 2},
            headers={"Content-Type": "application/problem+json"},
        ),
    )
    with pytest.raises(cls) as caught:
        client.post("/p/", {})
    error = caught.value
    assert type(error) is cls
    assert (error.service, error.method, error.path) == ("catalog", "POST", "/p/")
    assert (error.status, error.code, error.title) == (
        status,
        "validation_error",
        "Invalid input.",
    )
    assert error.detail == "The request body did not pass validation."
    assert error.errors == PROBLEM["errors"]
    assert error.request_id == "remote-1"
    assert error.problem is not None and error.problem["available"] == 2
    assert str(error) == (
        f"catalog POST /p/: {status} validation_error "
        "(The request body did not pass validation.)"
    )


def test_remote_request_id_from_the_header(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    body = {"title": "Not Found", "status": 404, "code": "not_found"}
    server.script("/p/", Reply(404, body, headers={"X-Request-ID": "abc.123"}))
    with pytest.raises(NotFoundError) as caught:
        catalog.get("/p/")
    assert caught.value.request_id == "abc.123"
    assert caught.value.detail is None
    assert str(caught.value) == "catalog GET /p/: 404 not_found (Not Found)"


@pytest.mark.parametrize(
    ("reply", "text", "request_id"),
    [
        (
            Reply(
                502,
                body=b"<html>\n<body>Bad   gateway</body></html>",
                headers={"Content-Type": "text/html", "X-Request-ID": "bad id!"},
            ),
            "<html> <body>Bad gateway</body></html>",
            None,
        ),
        (Reply(500, body=b"x" * 100_000), "x" * (TEXT_LIMIT - 1) + "…", None),
        (
            Reply(500, body=b"[1, 2]", headers={"Content-Type": "application/json"}),
            "[1, 2]",
            None,
        ),
        (
            Reply(500, body=b"{not json", headers={"Content-Type": "application/json"}),
            "{not json",
            None,
        ),
        (Reply(500, headers={"X-Request-ID": "r-9"}), "", "r-9"),
    ],
)
def test_answers_that_are_not_problems(
    configure: Any,
    server: ScriptedServer,
    reply: Reply,
    text: str,
    request_id: str | None,
) -> None:
    client = configure(RETRIES=0)
    server.script("/p/", reply)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.get("/p/")
    error = caught.value
    assert (error.status, error.code, error.problem) == (reply.status, None, None)
    assert error.text == text
    assert error.request_id == request_id
    assert len(str(error)) < TEXT_LIMIT + 100


def test_odd_problem_members_are_ignored(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    body = {"code": 5, "title": ["x"], "errors": "nope", "request_id": "has space"}
    server.script("/p/", Reply(400, body))
    with pytest.raises(ClientError) as caught:
        catalog.get("/p/")
    error = caught.value
    assert (error.code, error.title, error.errors, error.request_id) == (
        None,
        None,
        [],
        None,
    )
    assert str(error) == "catalog GET /p/: 400"


# --------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------


def test_paginate_follows_next(catalog: ServiceClient, server: ScriptedServer) -> None:
    page2 = f"{server.url}/api/products/?cursor=b"
    server.script(
        "/api/products/",
        Reply(json={"results": [1, 2], "next": page2, "previous": None}),
        Reply(json={"results": [3], "next": "/api/products/?cursor=c", "count": 4}),
        Reply(json={"results": [4], "next": None}),
    )
    assert list(catalog.paginate("/api/products/", params={"page_size": 2})) == [
        1,
        2,
        3,
        4,
    ]
    assert [r.path for r in server.hits()] == [
        "/api/products/?page_size=2",
        "/api/products/?cursor=b",
        "/api/products/?cursor=c",
    ]


def test_paginate_a_plain_list(catalog: ServiceClient, server: ScriptedServer) -> None:
    server.script("/api/tags/", Reply(json=["a", "b"]))
    assert list(catalog.paginate("/api/tags/")) == ["a", "b"]


@pytest.mark.parametrize(
    "link",
    [
        "http://evil.example/api/products/?page=2",
        "https://127.0.0.1:{port}/api/products/?page=2",
        "http://127.0.0.1:1/api/products/?page=2",
        "{url}/api/products/",
        "http://127.0.0.1:port/api/products/",
        5,
    ],
)
def test_paginate_refuses_foreign_or_looping_links(
    catalog: ServiceClient,
    server: ScriptedServer,
    link: Any,
) -> None:
    if isinstance(link, str):
        link = link.format(url=server.url, port=server.server_address[1])
    server.script("/api/products/", Reply(json={"results": [1], "next": link}))
    items: list[Any] = []
    with pytest.raises(InvalidResponseError, match="next page link"):
        items.extend(catalog.paginate("/api/products/"))
    assert items == [1]
    assert len(server.hits()) == 1


def test_paginate_refuses_a_non_envelope(
    catalog: ServiceClient,
    server: ScriptedServer,
) -> None:
    server.script("/api/products/", Reply(json={"items": [1]}))
    with pytest.raises(InvalidResponseError, match="not a paginated list"):
        list(catalog.paginate("/api/products/"))


def test_paginate_under_a_base_path(configure: Any, server: ScriptedServer) -> None:
    client = configure(BASE_URL=f"{server.url}/catalog")
    server.script(
        "/catalog/items/",
        Reply(json={"results": [1], "next": f"{server.url}/other/items/"}),
    )
    with pytest.raises(InvalidResponseError):
        list(client.paginate("items/"))


# --------------------------------------------------------------------------
# The log line
# --------------------------------------------------------------------------


def test_one_log_line_per_call(
    catalog: ServiceClient,
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="django_microkit.client")
    server.script("/api/p/", Reply(503), Reply(json={}))
    with structlog.testing.capture_logs() as logs:
        catalog.get("/api/p/", params={"secret": "x"})
    assert len(logs) == 1
    line = logs[0]
    duration = line.pop("duration_ms")
    assert line == {
        "event": "service_call",
        "log_level": "info",
        "peer_service": "catalog",
        "method": "GET",
        "path": "/api/p/",
        "status": 200,
        "attempts": 2,
    }
    assert duration > 0


def test_log_line_names_both_services(
    catalog: ServiceClient, server: ScriptedServer, log_lines: LogLines
) -> None:
    server.script("/api/p/", Reply(json={}))
    bind_contextvars(request_id="rid-call")
    try:
        catalog.get("/api/p/")
    finally:
        clear_contextvars()
    (line,) = log_lines.of("django_microkit.client")
    # "service" is the one writing the line, "peer_service" the one called.
    assert (line["service"], line["peer_service"]) == ("orders", "catalog")
    assert (line["event"], line["level"], line["status"]) == (
        "service_call",
        "info",
        200,
    )
    assert line["request_id"] == "rid-call"


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Reply(503), 503, None),
        (Reply(json={}, delay=0.2), None, "timeout"),
    ],
)
def test_failed_calls_log_a_warning(
    configure: Any,
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
    reply: Reply,
    status: int | None,
    error: str | None,
) -> None:
    client = configure(RETRIES=0, TIMEOUT=0.1)
    caplog.set_level(logging.WARNING, logger="django_microkit.client")
    server.script("/p/", reply)
    with structlog.testing.capture_logs() as logs, pytest.raises(ServiceError):
        client.get("/p/")
    assert [(e["log_level"], e["status"], e.get("error")) for e in logs] == [
        ("warning", status, error)
    ]


def test_open_circuit_is_logged(
    configure: Any,
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = configure(RETRIES=0, BREAKER={"FAILURES": 1})
    caplog.set_level(logging.INFO, logger="django_microkit.client")
    server.script("/p/", Reply(503))
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                client.get("/p/")
    assert [(e["event"], e.get("attempts"), e.get("error")) for e in logs] == [
        ("circuit_open", None, None),
        ("service_call", 1, None),
        ("service_call", 0, "circuit_open"),
    ]


def test_nothing_logged_below_the_level(
    catalog: ServiceClient,
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="django_microkit.client")
    server.script("/p/", Reply(json={}))
    with structlog.testing.capture_logs() as logs:
        catalog.get("/p/")
    assert logs == []


def test_override_settings_reaches_existing_clients(catalog: ServiceClient) -> None:
    with override_settings(
        MICROKIT={"SERVICES": {"catalog": {"BASE_URL": "http://elsewhere:81"}}}
    ):
        assert catalog.config.base_url == "http://elsewhere:81"
        assert catalog.config.timeout == (1.0, 5.0)


def test_other_setting_changes_keep_the_config(catalog: ServiceClient) -> None:
    config = catalog.config
    with override_settings(DEBUG=True):
        assert catalog.config is config


def test_remote_request_id_from_the_configured_header(
    catalog: ServiceClient, server: ScriptedServer, settings: Any
) -> None:
    settings.MICROKIT = {
        **settings.MICROKIT,
        "REQUEST_ID": {"HEADER": "X-Correlation-ID"},
    }
    headers = {"X-Correlation-ID": "corr.1", "X-Request-ID": "other.2"}
    server.script("/p/", Reply(404, {"title": "Not Found"}, headers=headers))
    with pytest.raises(NotFoundError) as caught:
        catalog.get("/p/")
    assert caught.value.request_id == "corr.1"


@pytest.mark.parametrize(
    ("header", "member", "request_id"),
    [
        ("order 42/7", None, "order 42/7"),
        ("x", "order 42/8", "order 42/8"),
        ("abc.123", None, None),
        ("order\t42", None, None),
        ("order " + "4" * 1100, None, None),
    ],
)
def test_remote_request_id_follows_the_configured_pattern(
    catalog: ServiceClient,
    server: ScriptedServer,
    settings: Any,
    header: str,
    member: str | None,
    request_id: str | None,
) -> None:
    # A remote's ID is kept by the rule this service applies to its callers':
    # the custom PATTERN, and printable ASCII of at most 1024 characters.
    settings.MICROKIT = {
        **settings.MICROKIT,
        "REQUEST_ID": {"PATTERN": r"order .+|x"},
    }
    body: dict[str, Any] = {"title": "Not Found"}
    if member is not None:
        body["request_id"] = member
    server.script("/p/", Reply(404, body, headers={"X-Request-ID": header}))
    with pytest.raises(NotFoundError) as caught:
        catalog.get("/p/")
    assert caught.value.request_id == request_id
