from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
import structlog
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import AsyncClient, Client, RequestFactory, override_settings

from django_microkit.request_id import (
    RequestIDMiddleware,
    TraceContext,
    get_request_id,
    get_trace_context,
    is_valid_request_id,
    outgoing_headers,
    parse_traceparent,
    parse_tracestate,
)
from tests.conftest import LogLines
from tests.test_checks import messages

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
CHILD = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[0-3])")


def request_id_settings(**section: Any) -> dict[str, Any]:
    return {"SERVICE_NAME": "tests", "REQUEST_ID": section}


def trusted_when_verified(request: HttpRequest) -> bool:
    """A trust policy: the mesh has verified the caller."""
    return request.META.get("HTTP_X_MESH_VERIFIED") == "yes"


def test_nothing_outside_a_request() -> None:
    assert get_request_id() is None
    assert get_trace_context() is None


# --- traceparent -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACEPARENT, TraceContext(TRACE_ID, PARENT_ID, True)),
        (f"00-{TRACE_ID}-{PARENT_ID}-00", TraceContext(TRACE_ID, PARENT_ID, False)),
        # Level 2's random flag is kept beside sampled; other bits are ignored.
        (f"00-{TRACE_ID}-{PARENT_ID}-09", TraceContext(TRACE_ID, PARENT_ID, True)),
        (
            f"00-{TRACE_ID}-{PARENT_ID}-fe",
            TraceContext(TRACE_ID, PARENT_ID, False, random=True),
        ),
        (
            f"00-{TRACE_ID}-{PARENT_ID}-02",
            TraceContext(TRACE_ID, PARENT_ID, False, random=True),
        ),
        (
            f"00-{TRACE_ID}-{PARENT_ID}-03",
            TraceContext(TRACE_ID, PARENT_ID, True, random=True),
        ),
        # Optional whitespace around the value.
        (f" \t{TRACEPARENT}\t ", TraceContext(TRACE_ID, PARENT_ID, True)),
        # A later version is read for its first four fields.
        (f"cc-{TRACE_ID}-{PARENT_ID}-01", TraceContext(TRACE_ID, PARENT_ID, True)),
        (
            f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like",
            TraceContext(TRACE_ID, PARENT_ID, True),
        ),
    ],
)
def test_valid_traceparent(value: str, expected: TraceContext) -> None:
    assert expected == parse_traceparent(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        # version 00 is exactly 55 characters
        f"{TRACEPARENT}.",
        f"{TRACEPARENT}-what-the-future-will-be-like",
        f"{TRACEPARENT}\n",
        # a later version continues with a dash or not at all
        f"cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like",
        f"cc-{TRACE_ID}-{PARENT_ID}-0",
        # version ff is forbidden; versions are two lowercase hex digits
        f"ff-{TRACE_ID}-{PARENT_ID}-01",
        f".0-{TRACE_ID}-{PARENT_ID}-01",
        f"0.-{TRACE_ID}-{PARENT_ID}-01",
        f"0A-{TRACE_ID}-{PARENT_ID}-01",
        f"000-{TRACE_ID}-{PARENT_ID}-01",
        f"0-{TRACE_ID}-{PARENT_ID}-01",
        # trace-id
        f"00-{'0' * 32}-{PARENT_ID}-01",
        f"00-.{TRACE_ID[1:]}-{PARENT_ID}-01",
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",
        f"00-{TRACE_ID}0-{PARENT_ID}-01",
        f"00-{TRACE_ID[1:]}-{PARENT_ID}-01",
        # parent-id
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID}-.{PARENT_ID[1:]}-01",
        f"00-{TRACE_ID}-{PARENT_ID}0-01",
        f"00-{TRACE_ID}-{PARENT_ID[1:]}-01",
        # trace-flags
        f"00-{TRACE_ID}-{PARENT_ID}-.0",
        f"00-{TRACE_ID}-{PARENT_ID}-0.",
        f"00-{TRACE_ID}-{PARENT_ID}-001",
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        f"00-{TRACE_ID}-{PARENT_ID}-0F",
        # two headers, combined by the server
        f"{TRACEPARENT},{TRACEPARENT}",
        f"cc-{TRACE_ID}-{PARENT_ID}-01,cc-{TRACE_ID}-{PARENT_ID}-01",
        # non-ASCII digits and sheer size
        f"00-{'٤' * 32}-{PARENT_ID}-01",
        "0" * 10_000,
    ],
)
def test_invalid_traceparent(value: str) -> None:
    assert parse_traceparent(value) is None


# --- tracestate --------------------------------------------------------------

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=").strip()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo=1,bar=2", "foo=1,bar=2"),
        ("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"),
        ("\t foo=1 \t", "foo=1"),
        ("", None),
        (" , ,\t", None),
        (",foo=1,,", "foo=1"),
        (
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        ),
        (f"{KEY_CHARS}={VALUE_CHARS}", f"{KEY_CHARS}={VALUE_CHARS}"),
        (f"{KEY_CHARS}@a-z0-9_-*/=1", f"{KEY_CHARS}@a-z0-9_-*/=1"),
        ("foo= leading space kept", "foo= leading space kept"),
        ("z" * 256 + "=1", "z" * 256 + "=1"),
        ("t" * 241 + "@" + "s" * 14 + "=1", "t" * 241 + "@" + "s" * 14 + "=1"),
        # Level 2's key: a letter or digit, then up to 255 key characters,
        # "@" anywhere among them.
        ("foo@=1,bar=2", "foo@=1,bar=2"),
        ("foo@@bar=1,bar=2", "foo@@bar=1,bar=2"),
        ("foo@bar@baz=1,bar=2", "foo@bar@baz=1,bar=2"),
        ("t" * 242 + "@s=1", "t" * 242 + "@s=1"),
        ("t@" + "s" * 15 + "=1", "t@" + "s" * 15 + "=1"),
        ("t@1s=1", "t@1s=1"),
        ("1st=1", "1st=1"),
        # A repeated key keeps its left-most member.
        ("foo=1,foo=1", "foo=1"),
        ("foo=1,bar=2,foo=3", "foo=1,bar=2"),
        # 32 members, a repeated key among them.
        (
            ",".join(f"k{i % 31}={i}" for i in range(32)),
            ",".join(f"k{i}={i}" for i in range(31)),
        ),
        ("k=" + "v" * 256, "k=" + "v" * 256),
        (
            ",".join(f"k{i}={i}" for i in range(32)),
            ",".join(f"k{i}={i}" for i in range(32)),
        ),
    ],
)
def test_tracestate_kept(value: str, expected: str | None) -> None:
    assert expected == parse_tracestate(value)


@pytest.mark.parametrize(
    "value",
    [
        ",".join(f"k{i}={i}" for i in range(33)),
        # 33 members are too many even when one repeats a key.
        ",".join(f"k{i % 32}={i}" for i in range(33)),
        "FOO=1",
        "foo =1,bar=2",
        "foo.bar=1",
        "@foo=1,bar=2",
        "_foo=1",
        "z" * 257 + "=1",
        "t" * 241 + "@" + "s" * 15 + "=1",
        "foo=a=b",
        "foo=",
        "foo",
        "k=" + "v" * 257,
        "foo=\x1b[31m",
        "foo=caf\u00e9",
        "foo=1\nbar=2",
    ],
)
def test_tracestate_dropped(value: str) -> None:
    assert parse_tracestate(value) is None


def test_trace_context_for_outgoing_calls() -> None:
    trace = TraceContext(TRACE_ID, PARENT_ID, True, "congo=t61rcWkgMzE")
    first, second = trace.outgoing_headers(), trace.outgoing_headers()
    assert first["tracestate"] == "congo=t61rcWkgMzE"
    match = CHILD.fullmatch(first["traceparent"])
    assert match is not None
    assert (match[1], match[3]) == (TRACE_ID, "01")
    assert match[2] != PARENT_ID
    assert first["traceparent"] != second["traceparent"]
    assert {"traceparent"} == set(
        TraceContext(TRACE_ID, None, False).outgoing_headers()
    )
    assert TraceContext(TRACE_ID, None, False).trace_flags == "00"


@pytest.mark.parametrize(
    ("sampled", "random", "flags"),
    [
        (False, False, "00"),
        (True, False, "01"),
        (False, True, "02"),
        (True, True, "03"),
    ],
)
def test_trace_flags(sampled: bool, random: bool, flags: str) -> None:
    trace = TraceContext(TRACE_ID, PARENT_ID, sampled, random=random)
    assert flags == trace.trace_flags
    assert trace.child_traceparent().endswith(f"-{flags}")


def test_new_trace() -> None:
    trace = TraceContext.new()
    assert HEX32.fullmatch(trace.trace_id)
    assert (trace.parent_id, trace.sampled, trace.tracestate) == (None, False, None)
    # Its trace-id is random: Level 2 says to flag it so.
    assert trace.random
    assert trace.trace_flags == "02"
    assert TraceContext.new().trace_id != trace.trace_id


# --- the middleware, through the test client ---------------------------------


def echo(client: Client, **headers: str) -> tuple[HttpResponseBase, dict[str, Any]]:
    response = client.get("/request-id/echo", headers=headers)
    return response, response.json()


def test_generates_an_id_when_none_is_sent() -> None:
    response, body = echo(Client())
    assert HEX32.fullmatch(body["request_id"])
    assert body["request_id"] == body["request_attribute"]
    assert body["request_id"] == response["X-Request-ID"]


def test_each_request_gets_its_own_id() -> None:
    client = Client()
    assert echo(client)[1]["request_id"] != echo(client)[1]["request_id"]


@pytest.mark.parametrize(
    "request_id", ["abc", "9f1c2b7e4d0a4c55a1f3e0c2d9b8a7f6", "a.b_c:d-e", "x" * 128]
)
def test_keeps_a_valid_id(request_id: str) -> None:
    response, body = echo(Client(), **{"X-Request-ID": request_id})
    assert request_id == body["request_id"] == response["X-Request-ID"]


HOSTILE = [
    "",
    "x" * 129,
    "has space",
    "semi;colon",
    "line\nbreak",
    "carriage\rreturn",
    "\x1b[31mred\x1b[0m",
    "caf\u00e9",
    "\u202eevil",
    "a" * 10_000,
    "nul\x00byte",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_replaces_an_invalid_id_and_never_echoes_it(
    hostile: str, log_lines: LogLines
) -> None:
    response, body = echo(Client(), **{"X-Request-ID": hostile})
    assert HEX32.fullmatch(response["X-Request-ID"])
    assert response["X-Request-ID"] == body["request_id"]
    text = log_lines.text()
    assert all(ord(c) < 0x7F for c in text)
    if len(hostile) > 64 or not (hostile.isascii() and hostile.isprintable()):
        assert hostile not in text
    (access,) = log_lines.of("django_microkit.access")
    rejected = access["rejected_request_id"]
    assert len(rejected) <= 64 * 10 + 3  # each character at most \U0000XXXX
    assert rejected.isprintable() and rejected.isascii()


@pytest.mark.parametrize(
    ("received", "logged"),
    [
        ("a" * 10_000, "a" * 64 + "..."),
        ("\x1b[31m", "\\x1b[31m"),
        ("caf\u00e9\n", "caf\\xe9\\n"),
    ],
)
def test_rejected_id_is_logged_escaped_and_truncated(
    received: str, logged: str, log_lines: LogLines
) -> None:
    echo(Client(), **{"X-Request-ID": received})
    (access,) = log_lines.of("django_microkit.access")
    assert access["rejected_request_id"] == logged


def test_permissive_pattern_still_refuses_unsafe_values() -> None:
    with override_settings(MICROKIT=request_id_settings(PATTERN=r"(?s).*")):
        for hostile in ["line\nbreak", "caf\u00e9", "\x1b[0m", "a" * 1025]:
            response, _ = echo(Client(), **{"X-Request-ID": hostile})
            assert HEX32.fullmatch(response["X-Request-ID"])
        response, _ = echo(Client(), **{"X-Request-ID": "any printable {text}"})
        assert response["X-Request-ID"] == "any printable {text}"


def test_is_valid_request_id_is_the_rule_the_middleware_applies() -> None:
    hostile = ["", "has space", "line\nbreak", "caf\u00e9", "a" * 129]
    assert is_valid_request_id("9f1c2b7e.a:b_c-d")
    assert not any(is_valid_request_id(value) for value in hostile)
    with override_settings(MICROKIT=request_id_settings(PATTERN=r"(?s).*")):
        assert is_valid_request_id("has space")
        assert is_valid_request_id("a" * 1024)
        assert not is_valid_request_id("a" * 1025)
        assert not is_valid_request_id("line\nbreak")
        assert not is_valid_request_id("caf\u00e9")
    with override_settings(MICROKIT=request_id_settings(PATTERN=r"[0-9]{4}")):
        assert is_valid_request_id("1234")
        assert not is_valid_request_id("9f1c2b7e")


def test_header_and_pattern_are_configurable() -> None:
    config = request_id_settings(HEADER="X-Correlation-ID", PATTERN=r"[0-9]{4}")
    with override_settings(MICROKIT=config):
        response, body = echo(Client(), **{"X-Correlation-ID": "1234"})
        assert "1234" == body["request_id"] == response["X-Correlation-ID"]
        assert "X-Request-ID" not in response
        assert body["outgoing"]["X-Correlation-ID"] == "1234"
        response, body = echo(Client(), **{"X-Correlation-ID": "12345"})
        assert HEX32.fullmatch(response["X-Correlation-ID"])
    # Back to the default once the setting is gone.
    response, _ = echo(Client(), **{"X-Request-ID": "back"})
    assert response["X-Request-ID"] == "back"


# --- trust policy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust", "meta", "trusted"),
    [
        ("any", {}, True),
        ("none", {}, False),
        ("proxies", {"REMOTE_ADDR": "10.1.2.3"}, True),
        ("proxies", {"REMOTE_ADDR": "2001:db8::7"}, True),
        ("proxies", {"REMOTE_ADDR": "192.168.1.1"}, False),
        ("proxies", {"REMOTE_ADDR": "not-an-address"}, False),
        (f"{__name__}.trusted_when_verified", {"HTTP_X_MESH_VERIFIED": "yes"}, True),
        (f"{__name__}.trusted_when_verified", {}, False),
    ],
)
def test_trust_policy(
    trust: str, meta: dict[str, Any], trusted: bool, log_lines: LogLines
) -> None:
    config = request_id_settings(
        TRUST=trust, TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8::/32"]
    )
    with override_settings(MICROKIT=config):
        response = Client().get(
            "/request-id/echo",
            headers={
                "X-Request-ID": "from-upstream",
                "traceparent": TRACEPARENT,
                "tracestate": "congo=t61rcWkgMzE",
            },
            **meta,
        )
    body = response.json()
    lines = [line for line in log_lines.all() if "request_id" in line]
    assert lines
    if trusted:
        assert response["X-Request-ID"] == "from-upstream"
        assert body["trace_id"] == TRACE_ID
        assert body["tracestate"] == "congo=t61rcWkgMzE"
        assert all("upstream_request_id" not in line for line in lines)
    else:
        # A fresh ID and a fresh trace; the received ID is only logged.
        assert HEX32.fullmatch(response["X-Request-ID"])
        assert body["trace_id"] != TRACE_ID
        assert body["tracestate"] is None
        assert all(line["upstream_request_id"] == "from-upstream" for line in lines)


def test_untrusted_invalid_id_is_not_logged_as_upstream(log_lines: LogLines) -> None:
    with override_settings(MICROKIT=request_id_settings(TRUST="none")):
        echo(Client(), **{"X-Request-ID": "bad id"})
    (access,) = log_lines.of("django_microkit.access")
    assert "upstream_request_id" not in access
    assert access["rejected_request_id"] == "bad id"


def test_trust_policy_is_not_asked_without_headers() -> None:
    asked: list[HttpRequest] = []

    def policy(request: HttpRequest) -> bool:
        asked.append(request)
        return True

    import tests.test_request_id as module

    module.counting_policy = policy  # type: ignore[attr-defined]
    try:
        with override_settings(
            MICROKIT=request_id_settings(TRUST=f"{__name__}.counting_policy")
        ):
            echo(Client())
            assert asked == []
            echo(Client(), traceparent=TRACEPARENT)
            assert len(asked) == 1
    finally:
        del module.counting_policy  # type: ignore[attr-defined]


# --- trace context through the middleware ------------------------------------


def test_continues_the_callers_trace() -> None:
    response, body = echo(
        Client(),
        traceparent=TRACEPARENT,
        tracestate="congo=t61rcWkgMzE , rojo=00f067aa0ba902b7",
    )
    assert (
        body["trace_id"],
        body["parent_id"],
        body["sampled"],
    ) == (TRACE_ID, PARENT_ID, True)
    assert body["same_trace_object"]
    outgoing = body["outgoing"]
    assert outgoing["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert response["X-Request-ID"] == outgoing["X-Request-ID"]
    match = CHILD.fullmatch(outgoing["traceparent"])
    assert match is not None
    assert (match[1], match[3]) == (TRACE_ID, "01")
    assert match[2] != PARENT_ID


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"tracestate": "congo=t61rcWkgMzE"},  # tracestate alone is discarded
        {"traceparent": f"ff-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "a=1"},
        {"traceparent": "\x1b[31m" * 100},
    ],
)
def test_starts_a_new_trace(headers: dict[str, str]) -> None:
    _, body = echo(Client(), **headers)
    assert HEX32.fullmatch(body["trace_id"])
    assert body["trace_id"] != TRACE_ID
    assert (
        body["parent_id"],
        body["sampled"],
        body["tracestate"],
    ) == (None, False, None)
    match = CHILD.fullmatch(body["outgoing"]["traceparent"])
    assert match is not None
    assert (body["trace_id"], "02") == (match[1], match[3])
    assert "tracestate" not in body["outgoing"]


@pytest.mark.parametrize(
    ("flags", "random"), [("02", True), ("03", True), ("01", False)]
)
def test_the_random_flag_is_forwarded_unchanged(flags: str, random: bool) -> None:
    _, body = echo(Client(), traceparent=f"00-{TRACE_ID}-{PARENT_ID}-{flags}")
    assert (TRACE_ID, random) == (body["trace_id"], body["random"])
    match = CHILD.fullmatch(body["outgoing"]["traceparent"])
    assert match is not None
    assert (TRACE_ID, flags) == (match[1], match[3])


def test_a_repeated_tracestate_key_keeps_the_header() -> None:
    # Two tracestate headers arrive joined by a comma.
    _, body = echo(Client(), traceparent=TRACEPARENT, tracestate="foo=1,bar=2,foo=2")
    assert body["trace_id"] == TRACE_ID
    assert body["outgoing"]["tracestate"] == "foo=1,bar=2"


def test_invalid_tracestate_is_dropped_but_the_trace_continues() -> None:
    _, body = echo(Client(), traceparent=TRACEPARENT, tracestate="foo=1,FOO=2")
    assert body["trace_id"] == TRACE_ID
    assert body["tracestate"] is None
    assert "tracestate" not in body["outgoing"]


def test_outgoing_headers_outside_a_request() -> None:
    headers = outgoing_headers()
    assert list(headers) == ["traceparent"]
    match = CHILD.fullmatch(headers["traceparent"])
    assert match is not None
    assert match[3] == "02"


# --- context lifetime --------------------------------------------------------


def test_context_is_reset_after_each_request() -> None:
    echo(Client(), **{"X-Request-ID": "gone-after"}, traceparent=TRACEPARENT)
    assert get_request_id() is None
    assert get_trace_context() is None
    # Including what the view itself bound.
    assert structlog.contextvars.get_contextvars() == {}


def test_context_is_reset_after_each_async_request() -> None:
    async def scenario() -> dict[str, Any]:
        response = await AsyncClient().get(
            "/request-id/async-echo", headers={"X-Request-ID": "async-one"}
        )
        assert get_request_id() is None
        assert get_trace_context() is None
        assert structlog.contextvars.get_contextvars() == {}
        return dict(response.json())

    body = asyncio.run(scenario())
    assert "async-one" == body["request_id"] == body["request_attribute"]


def test_context_is_reset_when_the_inner_handler_raises() -> None:
    def explode(request: HttpRequest) -> HttpResponse:
        assert get_request_id() is not None
        raise KeyboardInterrupt

    middleware = RequestIDMiddleware(explode)
    with pytest.raises(KeyboardInterrupt):
        middleware(RequestFactory().get("/"))
    assert get_request_id() is None
    assert structlog.contextvars.get_contextvars() == {}


def bind_and_log(request: HttpRequest) -> HttpResponse:
    marker = request.GET.get("marker", "")
    if marker:
        structlog.contextvars.bind_contextvars(bound_in_view=marker)
    structlog.get_logger("tests.app").info("in view")
    return HttpResponse()


def test_the_context_lasts_until_the_response_is_closed(log_lines: LogLines) -> None:
    # A streaming body is sent after the middleware has returned.
    response = Client().get("/request-id/stream", headers={"X-Request-ID": "late"})
    assert b"".join(response.streaming_content) == b"streamed"  # type: ignore[attr-defined]
    (line,) = log_lines.of("tests.app")
    assert "late" == line["request_id"] == line["seen"]
    assert response["X-Request-ID"] == line["request_id"]
    # Closed once sent: nothing is left behind.
    assert get_request_id() is None
    assert get_trace_context() is None
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize("next_request", ["middleware", "client"])
def test_a_response_never_closed_leaks_nothing(
    next_request: str, log_lines: LogLines
) -> None:
    untrusted = {"TRUST": "none"}
    with override_settings(MICROKIT=request_id_settings(**untrusted)):
        RequestIDMiddleware(bind_and_log)(
            RequestFactory().get("/?marker=m", HTTP_X_REQUEST_ID="never-closed")
        )
        assert get_request_id() is not None
        if next_request == "middleware":
            RequestIDMiddleware(bind_and_log)(RequestFactory().get("/?marker=n"))
        Client().get("/request-id/echo?marker=n")
    first, second, *third = log_lines.of("tests.app")
    assert len(third) == (1 if next_request == "middleware" else 0)
    assert first["upstream_request_id"] == "never-closed"
    assert first["bound_in_view"] == "m"
    assert "upstream_request_id" not in second
    assert second["bound_in_view"] == "n"
    assert first["request_id"] != second["request_id"]
    assert first["trace_id"] != second["trace_id"]
    assert get_request_id() is None


def test_one_class_serves_both_modes() -> None:
    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert not iscoroutinefunction(RequestIDMiddleware(sync_view))
    middleware = RequestIDMiddleware(async_view)
    assert iscoroutinefunction(middleware)
    response = asyncio.run(middleware(RequestFactory().get("/")))
    assert HEX32.fullmatch(response["X-Request-ID"])


# --- concurrency -------------------------------------------------------------


def check_isolation(
    results: dict[str, dict[str, Any]], log_lines: LogLines, expected: int
) -> None:
    assert expected == len(results)
    for request_id, body in results.items():
        assert request_id == body["request_id"] == body["request_attribute"]
        assert request_id == body["outgoing"]["X-Request-ID"]
    traces = {body["trace_id"] for body in results.values()}
    assert expected == len(traces)
    seen = 0
    for line in log_lines.all():
        marker = line.get("marker") or line.get("bound_in_view")
        if line.get("logger") in ("tests.app", "thirdparty.client"):
            # Every line of a request carries that request's ID and trace.
            assert marker == line["request_id"], line
            assert results[marker]["trace_id"] == line["trace_id"]
            seen += 1
    assert 2 * expected == seen
    access = log_lines.of("django_microkit.access")
    assert sorted(results) == sorted(line["request_id"] for line in access)


def test_ids_never_cross_threads(log_lines: LogLines) -> None:
    results: dict[str, dict[str, Any]] = {}
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        client = Client()
        barrier.wait()
        for i in range(5):
            request_id = f"thread-{n}-{i}"
            response = client.get(
                "/request-id/echo",
                {"marker": request_id, "sleep": "0.002"},
                headers={"X-Request-ID": request_id},
            )
            results[request_id] = response.json()
            assert get_request_id() is None

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_isolation(results, log_lines, 40)


def test_ids_never_cross_async_tasks(log_lines: LogLines) -> None:
    async def one(client: AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
        request_id = f"task-{n}"
        response = await client.get(
            "/request-id/async-echo",
            {"marker": request_id, "sleep": str((n % 4) / 1000)},
            headers={"X-Request-ID": request_id},
        )
        return request_id, dict(response.json())

    async def scenario() -> dict[str, dict[str, Any]]:
        client = AsyncClient()
        return dict(await asyncio.gather(*(one(client, n) for n in range(30))))

    check_isolation(asyncio.run(scenario()), log_lines, 30)


# --- system checks -----------------------------------------------------------

MIDDLEWARE = "django_microkit.request_id.RequestIDMiddleware"


class OwnRequestIDMiddleware(RequestIDMiddleware):
    pass


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        ([MIDDLEWARE], []),
        ([f"{__name__}.OwnRequestIDMiddleware"], []),
        (
            [MIDDLEWARE, "django.middleware.common.CommonMiddleware"],
            [],
        ),
        ([], ["django_microkit.W020"]),
        (["no.such.Middleware"], ["django_microkit.W020"]),
        (
            ["django.middleware.security.SecurityMiddleware", MIDDLEWARE],
            ["django_microkit.W021"],
        ),
        (
            ["django_microkit.errors.SomeMiddleware", MIDDLEWARE],
            ["django_microkit.E020"],
        ),
    ],
)
def test_middleware_checks(middleware: list[str], expected: list[str]) -> None:
    # Other concerns' checks about their own middleware are theirs to test.
    found = messages(MIDDLEWARE=middleware)
    own = [i for i in found if re.fullmatch(r"django_microkit\.[EW]02\d", i)]
    assert expected == sorted(own)


def test_w021_names_what_comes_first() -> None:
    found = messages(
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware", MIDDLEWARE]
    )
    assert (
        "django.middleware.security.SecurityMiddleware"
        in found["django_microkit.W021"].msg
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"PATTERN": "[a-z"}, ["django_microkit.E021"]),
        ({"HEADER": "X Request ID"}, ["django_microkit.E022"]),
        ({"HEADER": ""}, ["django_microkit.E022"]),
        ({"TRUST": "everyone"}, ["django_microkit.E023"]),
        ({"TRUST": "no.such.function"}, ["django_microkit.E023"]),
        ({"TRUST": f"{__name__}.HEX32"}, ["django_microkit.E023"]),
        ({"TRUST": f"{__name__}.trusted_when_verified"}, []),
        ({"TRUSTED_PROXIES": ["10.0.0.0/8", "fd00::/8", "192.0.2.1"]}, []),
        ({"TRUSTED_PROXIES": ["10.0.0.0/33"]}, ["django_microkit.E024"]),
        ({"TRUSTED_PROXIES": [42, "nope"]}, ["django_microkit.E024"] * 2),
        ({"TRUST": "proxies"}, ["django_microkit.W022"]),
        ({"TRUST": "proxies", "TRUSTED_PROXIES": ["10.0.0.0/8"]}, []),
        # Wrong types are E003's; these checks stay quiet.
        ({"PATTERN": 5, "HEADER": 5, "TRUST": 5, "TRUSTED_PROXIES": "x"}, ["E003"]),
    ],
)
def test_settings_checks(section: dict[str, Any], expected: list[str]) -> None:
    from django.core.checks import run_checks

    with override_settings(MICROKIT=request_id_settings(**section)):
        found = sorted(
            str(m.id) for m in run_checks() if (m.id or "").startswith("django_micro")
        )
    if expected == ["E003"]:
        assert set(found) == {"django_microkit.E003"}
    else:
        assert expected == found
