"""What outgoing calls carry: request ID, trace context, service token, and how
they coexist with sentry-sdk's own propagation headers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, override_settings
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from django_microkit.client import OutgoingCall, ServiceClient
from django_microkit.service_auth import verify_service_token
from django_microkit.service_auth.keys import generate_key
from tests.scripted_server import Reply, ScriptedServer, server_fixture  # noqa: F401

PRIVATE, PUBLIC = generate_key("EdDSA")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CHILD = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[0-3])")


def orders_settings(server_url: str, **entry: Any) -> dict[str, Any]:
    return {
        "SERVICE_NAME": "orders",
        "SERVICE_VERSION": "3.0",
        "SERVICE_AUTH": {
            "SIGNING_KEYS": [
                {"kid": "orders-1", "alg": "EdDSA", "key": {"value": PRIVATE}}
            ]
        },
        "SERVICES": {
            "catalog": {
                "BASE_URL": server_url,
                "SCOPES": ["products:read"],
                "BACKOFF": 0.01,
                "BREAKER": {"FAILURES": 100},
                **entry,
            }
        },
    }


CATALOG_SETTINGS = {
    "SERVICE_NAME": "catalog",
    "SERVICE_AUTH": {
        "PEERS": {
            "orders": [{"kid": "orders-1", "alg": "EdDSA", "key": {"value": PUBLIC}}]
        }
    },
}


@pytest.fixture
def orders(server: ScriptedServer, settings: Any) -> ScriptedServer:  # noqa: F811
    settings.MICROKIT = orders_settings(server.url)
    server.script("/api/products/7/", Reply(json={"id": 7}))
    return server


def parse_child(value: str | None) -> tuple[str, str, str]:
    match = CHILD.fullmatch(value or "")
    assert match, value
    return match.group(1), match.group(2), match.group(3)


# --------------------------------------------------------------------------
# Inside a request, through the real middleware
# --------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["/client/products/7/", "/client/async/products/7/"])
def test_a_view_forwards_request_id_and_trace_context(
    orders: ScriptedServer, view: str
) -> None:
    response = Client().get(
        view,
        headers={
            "X-Request-ID": "req-42",
            "traceparent": TRACEPARENT,
            "tracestate": "congo=t61rcWkgMzE",
        },
    )
    assert response.status_code == 200
    (received,) = orders.hits()
    assert received.all("X-Request-ID") == ["req-42"]
    assert len(received.all("traceparent")) == 1
    trace_id, parent_id, flags = parse_child(received.header("traceparent"))
    assert (trace_id, flags) == (TRACE_ID, "01")
    assert parent_id != "00f067aa0ba902b7"
    assert received.all("tracestate") == ["congo=t61rcWkgMzE"]


def test_a_request_without_trace_context_starts_one_for_its_calls(
    orders: ScriptedServer,
) -> None:
    response = Client().get("/client/products/7/")
    (received,) = orders.hits()
    assert received.header("X-Request-ID") == response["X-Request-ID"]
    trace_id, _, flags = parse_child(received.header("traceparent"))
    assert flags == "02"
    assert received.header("tracestate") is None
    assert trace_id != TRACE_ID


def test_every_attempt_gets_a_new_span_and_a_new_token(
    orders: ScriptedServer,
) -> None:
    orders.script("/api/products/7/", Reply(503), Reply(json={"id": 7}))
    Client().get("/client/products/7/", headers={"traceparent": TRACEPARENT})
    first, second = orders.hits()
    assert first.header("X-Request-ID") == second.header("X-Request-ID")
    spans = {parse_child(r.header("traceparent"))[1] for r in (first, second)}
    assert len(spans) == 2
    assert {parse_child(r.header("traceparent"))[0] for r in (first, second)} == {
        TRACE_ID
    }
    tokens = [r.header("Authorization") for r in (first, second)]
    assert tokens[0] != tokens[1]
    with override_settings(MICROKIT=CATALOG_SETTINGS):
        principals = [
            verify_service_token((token or "").removeprefix("Bearer "))
            for token in tokens
        ]
    assert [(p.name, p.scopes) for p in principals] == [
        ("orders", frozenset({"products:read"})),
    ] * 2
    assert principals[0].claims["jti"] != principals[1].claims["jti"]
    assert principals[0].claims["aud"] == "catalog"


def test_audience_setting_names_the_token_audience(
    server: ScriptedServer,  # noqa: F811
    settings: Any,
) -> None:
    settings.MICROKIT = orders_settings(server.url, AUDIENCE="catalog-v2", SCOPES=[])
    server.script("/", Reply(json={}))
    ServiceClient("catalog").get("/")
    token = (server.hits()[0].header("Authorization") or "").removeprefix("Bearer ")
    with override_settings(MICROKIT={**CATALOG_SETTINGS, "SERVICE_NAME": "catalog-v2"}):
        principal = verify_service_token(token)
    assert (principal.name, principal.scopes) == ("orders", frozenset())


# --------------------------------------------------------------------------
# Outside a request
# --------------------------------------------------------------------------


def test_outside_a_request_each_call_gets_new_ids(orders: ScriptedServer) -> None:
    client = ServiceClient("catalog")
    client.get("/api/products/7/")
    client.get("/api/products/7/")
    first, second = orders.hits()
    ids = [r.header("X-Request-ID") for r in (first, second)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i or "") for i in ids)
    assert ids[0] != ids[1]
    traces = [parse_child(r.header("traceparent"))[0] for r in (first, second)]
    assert traces[0] != traces[1]
    assert (
        first.header(
            "Authorization",
        )
        is not None
    )


def test_request_id_header_name_follows_the_setting(
    server: ScriptedServer,  # noqa: F811
    settings: Any,
) -> None:
    settings.MICROKIT = {
        **orders_settings(server.url),
        "REQUEST_ID": {"HEADER": "X-Correlation-ID"},
    }
    server.script("/", Reply(json={}))
    ServiceClient("catalog").get("/")
    received = server.hits()[0]
    assert received.header("X-Request-ID") is None
    assert re.fullmatch(r"[0-9a-f]{32}", received.header("X-Correlation-ID") or "")


# --------------------------------------------------------------------------
# Header providers
# --------------------------------------------------------------------------


def tenant_header(call: OutgoingCall) -> dict[str, str]:
    return {
        "X-Tenant": "acme",
        "X-Call": f"{call.service} {call.audience} {call.method} {call.attempt}",
    }


def test_own_header_providers_replace_the_defaults(
    server: ScriptedServer,  # noqa: F811
    settings: Any,
) -> None:
    settings.MICROKIT = orders_settings(
        server.url,
        HEADER_PROVIDERS=["tests.test_client_headers.tenant_header"],
        AUDIENCE="cat",
    )
    server.script("/", Reply(502), Reply(json={}))
    ServiceClient("catalog").put("/", {})
    first, second = server.hits()
    assert first.header("X-Tenant") == "acme"
    assert [first.header("X-Call"), second.header("X-Call")] == [
        "catalog cat PUT 1",
        "catalog cat PUT 2",
    ]
    assert first.header("Authorization") is None
    assert first.header("traceparent") is None


def test_without_a_signing_key_calls_carry_no_token(
    server: ScriptedServer,  # noqa: F811
    settings: Any,
) -> None:
    settings.MICROKIT = {**orders_settings(server.url), "SERVICE_AUTH": {}}
    server.script("/", Reply(json={}))
    ServiceClient("catalog").get("/")
    received = server.hits()[0]
    assert received.header("Authorization") is None
    assert received.header("traceparent") is not None


def test_callers_authorization_wins(orders: ScriptedServer) -> None:
    ServiceClient("catalog").get(
        "/api/products/7/", headers={"Authorization": "Bearer own"}
    )
    assert orders.hits()[0].all("Authorization") == ["Bearer own"]


# --------------------------------------------------------------------------
# Beside sentry-sdk
# --------------------------------------------------------------------------


class CapturingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def orders_over_http(orders: ScriptedServer, settings: Any) -> Iterator[str]:
    """This Django project served by a real WSGI server: sentry-sdk's Django
    integration wraps the WSGI handler, so its transaction is really started."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    httpd = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(params=[1.0, None], ids=["tracing", "no-tracing"])
def sentry(request: pytest.FixtureRequest) -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="https://public@sentry.example.invalid/1",
        transport=transport,
        traces_sample_rate=request.param,
    )
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


@pytest.mark.parametrize(
    "incoming",
    [
        {},
        {"traceparent": TRACEPARENT},
        {
            "traceparent": TRACEPARENT,
            "sentry-trace": f"{TRACE_ID}-00f067aa0ba902b7-1",
        },
    ],
    ids=["new-trace", "w3c-only", "both"],
)
def test_one_trace_id_beside_sentry_headers(
    orders: ScriptedServer,
    orders_over_http: str,
    sentry: CapturingTransport,
    incoming: dict[str, str],
) -> None:
    response = requests.get(
        f"{orders_over_http}/client/products/7/", headers=incoming, timeout=5
    )
    assert response.status_code == 200
    (received,) = orders.hits()
    assert len(received.all("traceparent")) == 1
    assert len(received.all("sentry-trace")) == 1
    trace_id, _, flags = parse_child(received.header("traceparent"))
    sentry_trace_id = (received.header("sentry-trace") or "").split("-")[0]
    assert sentry_trace_id == trace_id
    baggage = received.header("baggage") or ""
    assert f"sentry-trace_id={trace_id}" in baggage
    tracing = bool(sentry_sdk.get_client().options["traces_sample_rate"])
    if incoming:
        assert trace_id == TRACE_ID
    else:  # started here: Sentry's trace and its sampling decision
        assert flags == ("03" if tracing else "02")


def test_sentry_transaction_names_the_same_trace(
    orders: ScriptedServer,
    orders_over_http: str,
    sentry: CapturingTransport,
) -> None:
    orders.script("/api/products/7/", Reply(500))
    response = requests.get(
        f"{orders_over_http}/client/products/7/",
        headers={"traceparent": TRACEPARENT},
        timeout=5,
    )
    assert response.status_code == 503
    tracing = bool(sentry_sdk.get_client().options["traces_sample_rate"])
    # The server finishes the transaction once the answer is sent: wait for it.
    deadline = time.monotonic() + 5
    while True:
        traces = [
            item.payload.json["contexts"]["trace"]["trace_id"]
            for envelope in list(sentry.envelopes)
            for item in envelope.items
            if item.payload.json and item.payload.json.get("type") == "transaction"
        ]
        if traces or not tracing or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert traces == ([TRACE_ID] if tracing else [])


@pytest.mark.parametrize("incoming", [{}, {"traceparent": TRACEPARENT}])
def test_sentry_without_a_transaction_shares_the_trace_too(
    orders: ScriptedServer,
    sentry: CapturingTransport,
    incoming: dict[str, str],
) -> None:
    # The test client bypasses the WSGI handler: Sentry has no transaction. With
    # tracing on it then propagates nothing; without, it sends the headers of
    # its propagation context.
    Client().get("/client/products/7/", headers=incoming)
    (received,) = orders.hits()
    trace_id, _, _ = parse_child(received.header("traceparent"))
    tracing = bool(sentry_sdk.get_client().options["traces_sample_rate"])
    sentry_traces = [value.split("-")[0] for value in received.all("sentry-trace")]
    assert sentry_traces == ([] if tracing else [trace_id])
    if not tracing:
        assert f"sentry-trace_id={trace_id}" in (received.header("baggage") or "")
    if incoming:
        assert trace_id == TRACE_ID
