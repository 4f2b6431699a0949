"""ServiceClient against hostile or broken peers: a real HTTP server on 127.0.0.1
answering with bodies nested too deep, too long, inflating, trickling, with
absurd Retry-After values and with redirects. Every call ends as a parsed value
or a typed ServiceError, in bounded time and memory."""

from __future__ import annotations

import gzip
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from django_microkit.client import (
    CircuitOpenError,
    InvalidResponseError,
    ServiceClient,
    ServiceConnectionError,
    ServiceTimeoutError,
    ServiceUnavailableError,
    set_transport,
)
from django_microkit.client.errors import parse_retry_after
from tests.scripted_server import (  # noqa: F401
    Reply,
    ScriptedServer,
    catalog_fixture,
    configure_fixture,
    other_server_fixture,
    server_fixture,
)

MiB = 1024 * 1024
PART = b"x" * (64 * 1024)
_JSON = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------
# Bodies nested too deep to parse
# --------------------------------------------------------------------------


def test_a_success_nested_too_deep_is_an_invalid_response(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/deep/", Reply(body=b"[" * 100_000, headers=_JSON))
    with pytest.raises(InvalidResponseError) as caught:
        catalog.get("/deep/")
    assert (caught.value.status, caught.value.code) == (200, "invalid_response")
    # The one except clause a view needs for "cannot serve now" covers it.
    assert isinstance(caught.value, ServiceUnavailableError)


def test_an_error_nested_too_deep_keeps_its_status_and_text(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    headers = {"Content-Type": "application/problem+json"}
    server.script("/deep/", Reply(500, body=b"[" * 100_000, headers=headers))
    with pytest.raises(ServiceUnavailableError) as caught:
        catalog.get("/deep/")
    assert (caught.value.status, caught.value.problem) == (500, None)
    assert caught.value.text.startswith("[[[[")


# --------------------------------------------------------------------------
# Retry-After: RFC 9110 digits and dates only, capped
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("²", None),  # a digit, but not an ASCII one
        ("١٢٠", None),
        ("9" * 400, 3600.0),
        ("9" * 5000, 3600.0),  # more digits than int() takes
        ("0000000000000000000005", 5.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
        ("Wednesday, 21-Oct-15 07:28:10 GMT", 10.0),  # RFC 850
        ("Wed Oct 21 07:28:10 2015", 10.0),  # asctime
        ("Wed Oct  1 07:28:10 2015", 0.0),
        ("Wed, 31 Feb 2015 07:28:10 GMT", None),
        ("Wed, 21 Oct 2015 07:28:10 +0100", None),
        ("Wed, 21 Oct 2015 07:28:10", None),
        ("21 Oct 2015 07:28:10 GMT", None),
        ("Wed, 21 Oct ２０１５ 07:28:10 GMT", None),
        ("1e9", None),
        ("inf", None),
    ],
)
def test_parse_retry_after_takes_only_rfc_9110_values(
    value: str, expected: float | None
) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert parse_retry_after(value, now=now) == expected


def test_parse_retry_after_cap() -> None:
    assert parse_retry_after("120", cap=60) == 60.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", cap=60) == 60.0


@pytest.mark.parametrize(
    ("entry", "value", "expected"),
    [
        ({}, "9" * 400, 3600.0),
        ({"RETRY_AFTER_CAP": 60}, "9" * 400, 60.0),
        ({}, "Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
        ({}, "²", None),
    ],
)
def test_an_absurd_retry_after_is_capped_and_not_waited_for(
    configure: Any,
    server: ScriptedServer,
    entry: dict[str, Any],
    value: str,
    expected: float | None,
) -> None:
    catalog = configure(RETRIES=2, BACKOFF=0.01, BACKOFF_MAX=0.01, **entry)
    server.script("/busy/", Reply(503, headers={"Retry-After": value}))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        catalog.get("/busy/")
    assert time.monotonic() - started < 2
    assert caught.value.retry_after == expected
    # What a view answers with: a whole number of seconds.
    assert round(caught.value.retry_after or 5) >= 0


# --------------------------------------------------------------------------
# Bodies longer than the limits
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "entry", "limit"),
    [
        (500, {}, MiB),  # an HTML error page from a proxy
        (200, {}, 10 * MiB),
        (200, {"MAX_BODY_SIZE": 100_000}, 100_000),
        (404, {"MAX_ERROR_BODY_SIZE": 1000}, 1000),
    ],
)
def test_a_body_past_its_limit_ends_the_call(
    configure: Any,
    server: ScriptedServer,
    status: int,
    entry: dict[str, Any],
    limit: int,
) -> None:
    catalog = configure(**entry)
    size = 200 * MiB
    parts = (PART,) * (size // len(PART))
    server.script(
        "/big/", Reply(status, parts=parts, headers={"Content-Type": "text/html"})
    )
    with pytest.raises(InvalidResponseError) as caught:
        catalog.get("/big/")
    assert (caught.value.status, caught.value.code) == (status, "response_too_large")
    assert str(limit) in str(caught.value)
    time.sleep(0.1)
    # The rest was never read: the server could only fill the socket buffers.
    assert server.written["/big/"] < limit + 32 * MiB < size


def test_a_body_within_its_limit_is_read(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_ERROR_BODY_SIZE=10)
    body = b'{"items": "' + b"x" * (2 * MiB) + b'"}'
    server.script("/big/", Reply(body=body, headers=_JSON))
    assert len(catalog.get("/big/")["items"]) == 2 * MiB


def test_the_connection_of_a_body_past_its_limit_is_closed(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_BODY_SIZE=1000)
    server.script("/small/", Reply(json={"ok": True}))
    server.script("/big/", Reply(parts=(PART,) * 4))
    catalog.get("/small/")
    catalog.get("/small/")
    with pytest.raises(InvalidResponseError):
        catalog.get("/big/")
    catalog.get("/small/")
    ports = [received.port for received in server.hits()]
    assert ports[0] == ports[1] == ports[2] != ports[3]


@pytest.mark.parametrize(
    ("entry", "inflated"),
    [({}, 20 * MiB), ({"MAX_ERROR_BODY_SIZE": 100}, 0)],
)
def test_decompressed_bytes_count(
    configure: Any, server: ScriptedServer, entry: dict[str, Any], inflated: int
) -> None:
    catalog = configure(**entry)
    bomb = gzip.compress(b"0" * 20 * MiB)
    assert len(bomb) < 100_000
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    server.script("/bomb/", Reply(body=bomb, headers=headers))
    with pytest.raises(InvalidResponseError) as caught:
        catalog.get("/bomb/")
    assert caught.value.code == "response_too_large"
    small = gzip.compress(b'{"id": 7}')
    server.script("/gzip/", Reply(body=small, headers=headers))
    assert catalog.get("/gzip/") == {"id": 7}


def test_a_body_not_matching_its_encoding_is_an_invalid_response(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    server.script("/broken/", Reply(body=b"not gzip at all", headers=headers))
    with pytest.raises(InvalidResponseError, match="Content-Encoding"):
        catalog.get("/broken/")


def test_a_body_past_its_limit_counts_as_a_failure(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_BODY_SIZE=10, BREAKER={"FAILURES": 1})
    server.script("/big/", Reply(json={"a": "long enough"}))
    with pytest.raises(InvalidResponseError):
        catalog.get("/big/")
    with pytest.raises(CircuitOpenError):
        catalog.get("/big/")


def test_raw_gives_the_body_read(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/raw/", Reply(json={"a": 1}))
    response = catalog.get("/raw/", raw=True)
    assert response.json() == {"a": 1}
    assert b"".join(response.iter_content(3)) == response.content == b'{"a": 1}'


# --------------------------------------------------------------------------
# The deadline covers the whole answer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "limit"),
    [
        (Reply(parts=(b"x",) * 100, pause=0.3), 1.9),  # a byte each 0.3 s
        (Reply(parts=(b"x", b"y"), pause=3.0), 1.5),  # headers, then silence
        # The status line, then a header line each 0.3 s: 6 s in all.
        (Reply(headers={f"X-{n}": "x" for n in range(20)}, header_pause=0.3), 1.5),
        (Reply(delay=3.0), 1.5),  # silence before the status line
    ],
)
def test_the_deadline_covers_the_whole_answer(
    configure: Any, server: ScriptedServer, reply: Reply, limit: float
) -> None:
    catalog = configure(
        TIMEOUT=(0.5, 2.0), DEADLINE=1.0, RETRIES=2, BREAKER={"FAILURES": 1}
    )
    server.script("/slow/", reply)
    started = time.monotonic()
    with pytest.raises(ServiceTimeoutError) as caught:
        catalog.get("/slow/")
    assert time.monotonic() - started < limit
    assert caught.value.code == "deadline_exceeded"
    assert catalog.breaker.state == "open"
    assert len(server.hits()) == 1


def slow_provider(call: Any) -> dict[str, str]:
    """A header provider taking longer than the deadline."""
    time.sleep(0.3)
    return {}


def test_an_answer_not_started_by_the_deadline_is_not_waited_for(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(
        DEADLINE=0.2, HEADER_PROVIDERS=["tests.test_client_hostile.slow_provider"]
    )
    server.script("/ok/", Reply(json={"ok": True}))
    started = time.monotonic()
    with pytest.raises(ServiceTimeoutError, match="deadline_exceeded"):
        catalog.get("/ok/")
    # The answer came at once, but after the deadline: it is not read.
    assert 0.3 <= time.monotonic() - started < 0.5


def test_a_connection_cut_by_the_deadline_is_not_reused(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(TIMEOUT=(0.5, 2.0), DEADLINE=0.5, RETRIES=0)
    server.script("/ok/", Reply(json={"ok": True}))
    slow = Reply(headers={f"X-Pad-{n}": "x" for n in range(5)}, header_pause=0.3)
    server.script("/slow/", slow)
    assert catalog.get("/ok/") == {"ok": True}
    with pytest.raises(ServiceTimeoutError):
        catalog.get("/slow/")
    assert catalog.get("/ok/", deadline=5) == {"ok": True}
    ports = [received.port for received in server.hits()]
    assert ports[0] == ports[1] != ports[2]


class _Transport(BaseAdapter):
    """Answers 200 with ``raw`` as the body, whatever it is."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw = raw

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.raw = self.raw
        return response

    def close(self) -> None:
        pass


class _Trickle:
    """A body that never ends, a byte each 0.2 s."""

    def read(self, size: int) -> bytes:
        time.sleep(0.2)
        return b" "

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("raw", "expected"), [(None, None), (_Trickle(), "timeout")])
def test_any_transport_is_read_within_the_deadline(
    configure: Any, raw: Any, expected: str | None
) -> None:
    catalog = configure(DEADLINE=1.0)
    set_transport("catalog", _Transport(raw))
    try:
        if expected is None:
            assert catalog.get("/none/") is None
        else:
            started = time.monotonic()
            with pytest.raises(ServiceTimeoutError, match="deadline_exceeded"):
                catalog.get("/slow/")
            assert time.monotonic() - started < 1.5
    finally:
        set_transport("catalog", None)


def test_a_read_timeout_in_the_body_is_a_timeout(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(TIMEOUT=(0.5, 0.3), DEADLINE=5)
    server.script("/slow/", Reply(parts=(b"x", b"y"), pause=1.0))
    with pytest.raises(ServiceTimeoutError) as caught:
        catalog.get("/slow/")
    assert caught.value.code == "timeout"


def test_a_body_cut_short_is_a_connection_error(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    headers = {"Content-Length": "100", "Connection": "close"}
    server.script("/cut/", Reply(body=b"{}", headers=headers))
    with pytest.raises(ServiceConnectionError):
        catalog.get("/cut/")


# --------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------


def test_redirects_are_not_followed_by_default(
    catalog: ServiceClient, server: ScriptedServer, other_server: ScriptedServer
) -> None:
    server.script("/moved/", Reply(307, headers={"Location": f"{other_server.url}/x/"}))
    server.script("/here/", Reply(302, headers={"Location": "/there/"}))
    server.script("/bad/", Reply(302, headers={"Location": "http://[bad/x"}))
    for path, status in (("/moved/", 307), ("/here/", 302), ("/bad/", 302)):
        with pytest.raises(InvalidResponseError) as caught:
            catalog.get(path, raw=True)
        assert caught.value.code == "redirect"
        assert caught.value.status == status
    assert other_server.hits() == []
    assert [r.path for r in server.hits()] == ["/moved/", "/here/", "/bad/"]


def test_a_not_modified_answer_is_returned(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/cached/", Reply(304, headers={"ETag": '"v1"'}))
    response = catalog.get("/cached/", headers={"If-None-Match": '"v1"'}, raw=True)
    assert response.status_code == 304


def test_redirects_under_base_url_are_followed_without_the_callers_credentials(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_REDIRECTS=2)
    server.script("/old/", Reply(301, headers={"Location": "/new/?page=2"}))
    server.script("/new/", Reply(json={"moved": True}))
    answer = catalog.get(
        "/old/", params={"page": "1"}, headers={"Authorization": "Bearer secret"}
    )
    assert answer == {"moved": True}
    first, hop = server.hits()
    assert (first.path, hop.path) == ("/old/?page=1", "/new/?page=2")
    assert first.header("Authorization") == "Bearer secret"
    assert hop.header("Authorization") is None
    assert hop.header("traceparent") is not None


def test_a_redirect_hop_drops_the_callers_credentials(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_REDIRECTS=1)
    server.script("/old/", Reply(302, headers={"Location": "/new/"}))
    server.script("/new/", Reply(json={"moved": True}))
    credentials = {
        "Authorization": "Basic c2VjcmV0",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "Cookie": "session=secret",
    }
    assert catalog.get("/old/", headers={**credentials, "X-Kept": "1"}) == {
        "moved": True
    }
    first, hop = server.hits()
    for name in credentials:
        assert first.header(name) is not None
        assert hop.header(name) is None, name
    assert hop.header("X-Kept") == "1"


def test_a_redirect_hop_carries_no_token(server: ScriptedServer, settings: Any) -> None:
    key = {"kid": "orders-1", "alg": "HS256", "key": {"value": "k" * 32}}
    settings.MICROKIT = {
        "SERVICE_NAME": "orders",
        "SERVICE_AUTH": {"SIGNING_KEYS": [key]},
        "SERVICES": {"catalog": {"BASE_URL": server.url, "MAX_REDIRECTS": 1}},
    }
    server.script("/old/", Reply(302, headers={"Location": "/new/"}))
    server.script("/new/", Reply(json={"moved": True}))
    assert ServiceClient("catalog").get("/old/") == {"moved": True}
    first, hop = server.hits()
    assert (first.header("Authorization") or "").startswith("Bearer ")
    assert hop.header("Authorization") is None
    assert hop.header("traceparent") is not None


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(303, "GET", b""), (302, "GET", b""), (307, "POST", b'{"n": 1}')],
)
def test_a_redirected_post(
    configure: Any, server: ScriptedServer, status: int, method: str, body: bytes
) -> None:
    catalog = configure(MAX_REDIRECTS=1)
    server.script("/orders/", Reply(status, headers={"Location": "/orders/7/"}))
    server.script("/orders/7/", Reply(json={"id": 7}))
    assert catalog.post("/orders/", {"n": 1}) == {"id": 7}
    hop = server.hits("/orders/7/")[0]
    assert (hop.method, hop.body) == (method, body)


def test_a_redirect_elsewhere_is_never_followed(
    configure: Any, server: ScriptedServer, other_server: ScriptedServer
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api", MAX_REDIRECTS=5)
    for location in (
        f"{other_server.url}/api/x/",
        "/admin/",
        # Dot segments are resolved (RFC 3986 §5.2.4) before the comparison.
        f"{server.url}/api/../admin/",
        "/api/./../admin/",
        "/api/%2E%2e/admin/",
        # No URL at all: urljoin would raise ValueError.
        "http://[bad/x",
    ):
        server.script("/api/moved/", Reply(307, headers={"Location": location}))
        with pytest.raises(InvalidResponseError, match="redirect"):
            catalog.get("/moved/")
    assert other_server.hits() == []
    assert [r.path for r in server.hits()] == ["/api/moved/"] * 6


@pytest.mark.parametrize(
    ("path", "owned"),
    [
        ("/api/../admin/", False),
        ("/api/%2e%2E/admin/", False),
        ("/api/..", False),
        ("/api/./x/", True),
        ("/api/x/..", True),
        ("/api/.", True),
        ("/../api/x/", True),  # no segment above the root
    ],
)
def test_owns_resolves_dot_segments(
    configure: Any, server: ScriptedServer, path: str, owned: bool
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api")
    assert catalog.config.owns(f"{server.url}{path}") is owned


def test_owns_compares_the_host_and_port_whatever_their_spelling(
    configure: Any, server: ScriptedServer
) -> None:
    port = server.url.rsplit(":", 1)[1]
    catalog = configure(BASE_URL=f"{server.url}/api")
    assert catalog.config.owns(f"HTTP://127.0.0.1:{port}/api/x/")
    assert not catalog.config.owns(f"http://127.0.0.1:0{port}/admin/")
    assert catalog.config.owns(f"http://127.0.0.1:0{port}/api/x/")
    assert not catalog.config.owns(f"http://127.0.0.2:{port}/api/x/")
    assert not catalog.config.owns("http://[bad/api/x/")
    assert not catalog.config.owns(f"http://127.0.0.1:{port}x/api/x/")


def test_a_redirect_with_dot_segments_under_base_url_is_followed(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api", MAX_REDIRECTS=1)
    server.script("/api/old/", Reply(302, headers={"Location": "/api/x/../new/"}))
    server.script("/api/new/", Reply(json={"moved": True}))
    assert catalog.get("/old/") == {"moved": True}


@pytest.mark.parametrize(
    "link", ["{url}/api/../admin/", "/api/./../admin/", "http://[bad/x"]
)
def test_paginate_refuses_a_link_out_of_the_base_path(
    configure: Any, server: ScriptedServer, link: str
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api")
    next_link = link.format(url=server.url)
    server.script("/api/products/", Reply(json={"results": [1], "next": next_link}))
    items: list[Any] = []
    with pytest.raises(InvalidResponseError, match="next page link") as caught:
        items.extend(catalog.paginate("/products/"))
    assert caught.value.code == "invalid_response"
    assert items == [1]
    assert [r.path for r in server.hits()] == ["/api/products/"]


def test_redirects_stop_at_max_redirects(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(MAX_REDIRECTS=2)
    server.script("/loop/", Reply(302, headers={"Location": "/loop/"}))
    with pytest.raises(InvalidResponseError) as caught:
        catalog.get("/loop/")
    assert caught.value.code == "redirect"
    assert len(server.hits()) == 3


def test_the_session_used_directly_reads_as_requests_does(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/moved/", Reply(302, headers={"Location": "/new/"}))
    response = catalog.session.get(f"{server.url}/moved/", timeout=1)
    # No deadline to read within, and no redirect followed by requests.
    assert (response.status_code, response.next) == (302, None)


@pytest.mark.parametrize("path", ["../admin/", "/x/../../admin/", "%2E%2E/admin/"])
def test_a_relative_path_out_of_the_base_path_is_refused(
    configure: Any, server: ScriptedServer, path: str
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api")
    with pytest.raises(ValueError, match="is not under"):
        catalog.get(path)
    assert server.hits() == []


def test_a_path_whose_query_holds_a_url_is_relative(
    configure: Any, server: ScriptedServer
) -> None:
    catalog = configure(BASE_URL=f"{server.url}/api")
    server.script("/api/search", Reply(json={"ok": True}))
    assert catalog.get("/search?next=http://elsewhere/") == {"ok": True}
