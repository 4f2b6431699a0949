"""OpenTelemetry spans on the request's own trace context, read back from the
SDK's in-memory exporter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import resolve
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from django_microkit.request_id import (
    RequestIDMiddleware,
    TraceContext,
    continued_context,
    get_trace_context,
)
from django_microkit.tracing import (
    consumer_span,
    get_tracing,
    message_headers,
    producer_span,
)
from django_microkit.tracing.otel import MicrokitIdGenerator, ServerSpan, Tracing
from tests.conftest import LogLines
from tests.scripted_server import Reply, ScriptedServer, server_fixture  # noqa: F401
from tests.tracing_exporter import EXPORTER

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
ROOT = Path(__file__).resolve().parent.parent

TRACING = {"ENABLED": True, "SPAN_PROCESSORS": ["tests.tracing_exporter.processor"]}


def traced(**microkit: Any) -> dict[str, Any]:
    return {"SERVICE_NAME": "orders", "TRACING": TRACING, **microkit}


@pytest.fixture
def exporter(settings: Any) -> Iterator[InMemorySpanExporter]:
    """Tracing on, every span kept in memory as it ends."""
    settings.MICROKIT = traced(SERVICE_VERSION="2.0")
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def hex_id(value: int, width: int = 16) -> str:
    return format(value, f"0{width}x")


# --------------------------------------------------------------------------
# Server spans
# --------------------------------------------------------------------------


def test_a_server_span_is_the_child_of_the_callers_traceparent(
    exporter: InMemorySpanExporter,
) -> None:
    response = Client().get(
        "/request-id/echo?marker=x",
        headers={"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"},
    )
    assert response.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /request-id/echo"
    assert span.kind is SpanKind.SERVER
    assert hex_id(span.context.trace_id, 32) == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert hex_id(span.parent.span_id) == PARENT_ID
    assert span.context.trace_flags.sampled
    assert span.context.trace_state.to_header() == "congo=t61rcWkgMzE"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/request-id/echo",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/request-id/echo",
        "server.address": "testserver",
        "server.port": 80,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "orders"
    assert span.resource.attributes["service.version"] == "2.0"
    # Calls made while serving name the server span as their parent.
    outgoing = response.json()["outgoing"]["traceparent"]
    assert outgoing == f"00-{TRACE_ID}-{hex_id(span.context.span_id)}-01"


def test_a_trace_started_here_keeps_the_logged_trace_id_and_is_sampled(
    exporter: InMemorySpanExporter, log_lines: LogLines
) -> None:
    response = Client().get("/request-id/echo")
    (span,) = exporter.get_finished_spans()
    body = response.json()
    assert span.parent is None
    assert hex_id(span.context.trace_id, 32) == body["trace_id"]
    # The SDK's sampler (parent-based, always on) decided: calls say so.
    assert body["sampled"] is True
    assert body["outgoing"]["traceparent"].endswith("-03")
    (access,) = log_lines.of("django_microkit.access")
    assert access["trace_id"] == body["trace_id"]
    assert access["span_id"] == hex_id(span.context.span_id)
    (in_view,) = log_lines.of("tests.app")
    assert in_view["span_id"] == access["span_id"]


def test_an_unsampled_caller_is_respected(exporter: InMemorySpanExporter) -> None:
    response = Client().get(
        "/request-id/echo", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}
    )
    assert list(exporter.get_finished_spans()) == []
    outgoing = response.json()["outgoing"]["traceparent"]
    trace_id, parent_id, flags = outgoing.split("-")[1:]
    assert (trace_id, flags) == (TRACE_ID, "00")
    assert parent_id != PARENT_ID


def test_an_unmatched_request_is_named_by_a_constant(
    exporter: InMemorySpanExporter,
) -> None:
    Client().get("/no/such/path/42")
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET unmatched"
    assert "http.route" not in (span.attributes or {})
    assert (span.attributes or {})["http.response.status_code"] == 404
    assert span.status.status_code is StatusCode.UNSET


def test_a_5xx_fails_the_span_and_an_unknown_method_is_other(
    exporter: InMemorySpanExporter,
) -> None:
    Client(raise_request_exception=False).get("/request-id/fail")
    Client().generic("BREW", "/request-id/echo")
    failed, brewed = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "500"
    assert brewed.name == "_OTHER /request-id/echo"
    assert (brewed.attributes or {})["http.request.method_original"] == "BREW"


def test_an_exception_past_the_middleware_fails_the_span(
    exporter: InMemorySpanExporter,
) -> None:
    def cancelled(request: HttpRequest) -> HttpResponse:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RequestIDMiddleware(cancelled)(RequestFactory().get("/request-id/echo"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "KeyboardInterrupt"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_an_async_view_is_served_in_its_span(
    exporter: InMemorySpanExporter,
) -> None:
    response = async_to_sync(AsyncClient().get)(
        "/request-id/async-echo", headers={"traceparent": TRACEPARENT}
    )
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /request-id/async-echo"
    assert response.json()["outgoing"]["traceparent"].split("-")[2] == hex_id(
        span.context.span_id
    )


def test_the_span_name_and_attributes_come_from_the_tracing_class(
    settings: Any,
) -> None:
    settings.MICROKIT = traced(
        TRACING={**TRACING, "TRACING_CLASS": "tests.test_tracing.NamedTracing"}
    )
    EXPORTER.clear()
    Client().get("/request-id/echo")
    (span,) = EXPORTER.get_finished_spans()
    assert span.name == "echo"
    assert (span.attributes or {})["tests.custom"] is True


class NamedTracing(Tracing):
    def server_span_name(self, method: str, route: str | None) -> str:
        return (route or "").rsplit("/", 1)[-1]

    def server_attributes(self, request: Any, method: str) -> dict[str, Any]:
        return {**super().server_attributes(request, method), "tests.custom": True}


def test_a_server_span_made_without_its_method_names_it_from_the_request(
    exporter: InMemorySpanExporter,
) -> None:
    # A TRACING_CLASS whose start_server_span builds its ServerSpan itself.
    tracing = get_tracing()
    assert tracing is not None
    request = RequestFactory().generic("BREW", "/request-id/echo")
    request.resolver_match = resolve("/request-id/echo")
    served, _ = tracing.start_server_span(request, TraceContext.new())
    # A trace started here and sampled already (Sentry's decision) is kept.
    sampled = TraceContext(TRACE_ID, None, True, random=True)
    try:
        assert served.method == "_OTHER"
        ServerSpan(tracing, served.span, served.token).finish(request, HttpResponse())
        served.end()
        again, kept = tracing.start_server_span(request, sampled)
        again.end()
    finally:
        # No request ends here to drop the span_id it bound.
        structlog.contextvars.clear_contextvars()
    assert kept is sampled
    span, _ = exporter.get_finished_spans()
    assert span.name == "_OTHER /request-id/echo"
    assert (span.attributes or {})["http.route"] == "/request-id/echo"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_tracing_follows_the_settings(settings: Any) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders"}
    assert get_tracing() is None
    settings.MICROKIT = traced(TRACING={**TRACING, "SERVICE_NAME": "orders-web"})
    tracing = get_tracing()
    assert isinstance(tracing, Tracing)
    assert tracing is get_tracing()
    resource = tracing.provider.resource.attributes
    assert resource["service.name"] == "orders-web"
    assert "service.version" not in resource


def test_otel_service_name_wins_over_the_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    settings.MICROKIT = traced()
    tracing = get_tracing()
    assert tracing is not None
    assert tracing.provider.resource.attributes["service.name"] == "from-env"


def test_the_default_processor_exports_over_otlp_http(settings: Any) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from django_microkit.tracing.otel import otlp_span_processor

    processor = otlp_span_processor()
    try:
        assert isinstance(processor, BatchSpanProcessor)
        assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)
    finally:
        processor.shutdown()  # type: ignore[no-untyped-call]


def test_the_id_generator_is_random_outside_a_trace_started_here() -> None:
    generator = MicrokitIdGenerator()
    assert generator.generate_trace_id() != generator.generate_trace_id()


# --------------------------------------------------------------------------
# Client spans
# --------------------------------------------------------------------------


@pytest.fixture
def catalog(server: ScriptedServer, settings: Any) -> ScriptedServer:  # noqa: F811
    settings.MICROKIT = traced(
        SERVICES={
            "catalog": {
                "BASE_URL": server.url,
                "BACKOFF": 0.01,
                "BREAKER": {"FAILURES": 100},
            }
        }
    )
    EXPORTER.clear()
    server.script("/api/products/7/", Reply(json={"id": 7}))
    return server


def test_each_attempt_is_a_client_span_whose_id_the_call_sends(
    catalog: ScriptedServer,
) -> None:
    catalog.script("/api/products/7/", Reply(503), Reply(json={"id": 7}))
    response = Client().get(
        "/client/products/7/?q=secret", headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    first, second, server = EXPORTER.get_finished_spans()
    assert server.kind is SpanKind.SERVER
    assert server.name == "GET /client/products/<int:product_id>/"
    for attempt, hit in zip((first, second), catalog.hits(), strict=True):
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.name == "GET"
        assert attempt.parent is not None
        assert attempt.parent.span_id == server.context.span_id
        assert hex_id(attempt.context.trace_id, 32) == TRACE_ID
        traceparent = hit.header("traceparent")
        assert traceparent == f"00-{TRACE_ID}-{hex_id(attempt.context.span_id)}-01"
    host, port = catalog.server_address[:2]
    assert dict(first.attributes or {}) == {
        "http.request.method": "GET",
        "peer.service": "catalog",
        "url.full": f"{catalog.url}/api/products/7/",
        "server.address": host,
        "server.port": port,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert first.status.status_code is StatusCode.ERROR
    assert (second.attributes or {})["http.request.resend_count"] == 1
    assert second.status.status_code is StatusCode.UNSET


def test_a_failed_attempt_names_its_error(catalog: ScriptedServer) -> None:
    from django_microkit.client import ServiceClient, ServiceConnectionError

    catalog.script("/api/products/7/", Reply(drop=True))
    with pytest.raises(ServiceConnectionError):
        ServiceClient("catalog").get("/api/products/7/", retries=0)
    (span,) = EXPORTER.get_finished_spans()
    # Outside a request the call's span is the root of a new trace.
    assert span.parent is None
    assert (span.attributes or {})["error.type"] == "connection_error"
    assert "http.response.status_code" not in (span.attributes or {})
    assert (catalog.hits()[0].header("traceparent") or "").split("-")[2] == hex_id(
        span.context.span_id
    )


def test_an_interrupted_attempt_ends_its_span(
    catalog: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_microkit.client import ServiceClient

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("requests.Session.request", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ServiceClient("catalog").get("/api/products/7/")
    (span,) = EXPORTER.get_finished_spans()
    assert (span.attributes or {})["error.type"] == "KeyboardInterrupt"
    assert trace.get_current_span() is trace.INVALID_SPAN


# --------------------------------------------------------------------------
# Producer and consumer spans
# --------------------------------------------------------------------------


def test_a_message_continues_the_trace_from_producer_to_consumer(
    exporter: InMemorySpanExporter, log_lines: LogLines
) -> None:
    parent = TraceContext(TRACE_ID, PARENT_ID, True, "congo=t61rcWkgMzE")
    with (
        continued_context("req-1", parent),
        producer_span("orders.order.created.v1 publish") as headers,
    ):
        pass
    (producer,) = exporter.get_finished_spans()
    assert producer.kind is SpanKind.PRODUCER
    assert producer.parent is None  # no span was current: a new trace
    with (
        continued_context("req-1", parent),
        trace.use_span(
            trace.NonRecordingSpan(
                trace.SpanContext(
                    int(TRACE_ID, 16),
                    int(PARENT_ID, 16),
                    True,
                    trace.TraceFlags(1),
                )
            )
        ),
        producer_span(
            "orders.order.created.v1 publish", attributes={"messaging.system": "x"}
        ) as headers,
    ):
        pass
    producer = exporter.get_finished_spans()[1]
    assert producer.parent is not None
    assert hex_id(producer.parent.span_id) == PARENT_ID
    assert headers["traceparent"] == (
        f"00-{TRACE_ID}-{hex_id(producer.context.span_id)}-01"
    )
    assert headers["tracestate"] == "congo=t61rcWkgMzE"
    assert headers["request_id"] == "req-1"

    with consumer_span("orders.order.created.v1 process", headers):
        structlog.get_logger("tests.consumer").info("handled")
        inside = get_trace_context()
    consumer = exporter.get_finished_spans()[2]
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and consumer.parent.is_remote
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert inside is not None and inside.tracestate == "congo=t61rcWkgMzE"
    (line,) = log_lines.of("tests.consumer")
    assert line["request_id"] == "req-1"
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == hex_id(consumer.context.span_id)
    assert get_trace_context() is None


def test_a_relay_continues_the_trace_stored_with_a_message(
    exporter: InMemorySpanExporter,
) -> None:
    stored = {"traceparent": TRACEPARENT, "request_id": "req-2"}
    with producer_span("orders.order.created.v1 publish", headers=stored) as sent:
        pass
    (producer,) = exporter.get_finished_spans()
    assert producer.parent is not None and hex_id(producer.parent.span_id) == (
        PARENT_ID
    )
    assert sent == {
        "traceparent": f"00-{TRACE_ID}-{hex_id(producer.context.span_id)}-01",
        "request_id": "req-2",
    }


def test_a_consumer_without_a_trace_starts_one_and_fails_on_an_exception(
    exporter: InMemorySpanExporter,
) -> None:
    with (
        pytest.raises(ValueError),
        consumer_span("x process", {"traceparent": "garbage", "request_id": "bad\nid"}),
    ):
        raise ValueError("handler failed")
    (consumer,) = exporter.get_finished_spans()
    assert consumer.parent is None
    assert consumer.status.status_code is StatusCode.ERROR


def test_without_tracing_messages_still_carry_the_trace(settings: Any) -> None:
    settings.MICROKIT = {"SERVICE_NAME": "orders"}
    with producer_span("x publish") as headers:
        pass
    assert set(headers) == {"traceparent"}
    carried = {**headers, "tracestate": "a=b", "request_id": "req-3"}
    with consumer_span("x process", carried):
        inside = get_trace_context()
        assert message_headers()["request_id"] == "req-3"
    assert inside is not None
    assert inside.trace_id == headers["traceparent"].split("-")[1]
    assert inside.tracestate == "a=b"
    with producer_span("x publish", headers=carried) as relayed:
        pass
    assert relayed["traceparent"].split("-")[1] == inside.trace_id
    assert relayed["request_id"] == "req-3"


# --------------------------------------------------------------------------
# Off: nothing imported, nothing paid
# --------------------------------------------------------------------------


#: Serves a request and sends and handles a message with tracing off, while
#: opentelemetry cannot be imported (as without the extra); says which of
#: django-microkit's modules tried to import it.
NO_OTEL = """
import json, os, sys

class NoOpenTelemetry:
    tried = []

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] != "opentelemetry":
            return None
        frame = sys._getframe(1)
        while frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        if "django_microkit" in frame.f_code.co_filename:
            self.tried.append(name)
        raise ModuleNotFoundError(name)

sys.meta_path.insert(0, NoOpenTelemetry())
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/request-id/echo")
from django_microkit.client import ServiceClient
from django_microkit.tracing import consumer_span, producer_span
with producer_span("x") as headers, consumer_span("y", headers):
    pass
print(json.dumps({
    "status": response.status_code,
    "tried": NoOpenTelemetry.tried,
    "loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
}))
"""


def test_without_tracing_opentelemetry_is_never_imported() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_OTEL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer == {"status": 200, "tried": [], "loaded": []}


@override_settings(MICROKIT={"SERVICE_NAME": "orders"})
def test_without_tracing_log_lines_have_no_span_id(log_lines: LogLines) -> None:
    Client().get("/request-id/echo")
    (access,) = log_lines.of("django_microkit.access")
    assert "span_id" not in access


# --------------------------------------------------------------------------
# System checks
# --------------------------------------------------------------------------


def tracing_messages(**section: Any) -> dict[str, Any]:
    from tests.test_checks import messages

    return messages(MICROKIT=traced(TRACING={**TRACING, **section}))


def test_tracing_on_with_the_defaults_passes_the_checks() -> None:
    assert tracing_messages() == {}
    # A wrong type is E003's, reported once.
    assert list(tracing_messages(SPAN_PROCESSORS=None, TRACING_CLASS=1)) == [
        "django_microkit.E003"
    ]


def test_tracing_without_the_extra_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    found = tracing_messages()
    assert list(found) == ["django_microkit.E120"]
    assert "django-microkit[otel]" in found["django_microkit.E120"].hint
    off = {"SERVICE_NAME": "orders", "TRACING": {**TRACING, "ENABLED": False}}
    from tests.test_checks import messages

    assert messages(MICROKIT=off) == {}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"SPAN_PROCESSORS": ["tests.no_such_module.processor"]}, "E121"),
        ({"SPAN_PROCESSORS": ["tests.tracing_exporter.EXPORTER"]}, "E121"),
        ({"SPAN_PROCESSORS": [42]}, "E121"),
        ({"SPAN_PROCESSORS": []}, "W120"),
        ({"TRACING_CLASS": "django_microkit.request_id.TraceContext"}, "E122"),
        ({"TRACING_CLASS": "tests.no_such_module.Tracing"}, "E122"),
    ],
)
def test_unusable_tracing_settings_are_reported(
    section: dict[str, Any], expected: str
) -> None:
    assert list(tracing_messages(**section)) == [f"django_microkit.{expected}"]


def test_a_subclass_of_tracing_passes_the_checks() -> None:
    assert tracing_messages(TRACING_CLASS="tests.test_tracing.NamedTracing") == {}


# --------------------------------------------------------------------------
# Edges
# --------------------------------------------------------------------------


def test_outside_any_span_a_call_continues_the_bound_trace(
    exporter: InMemorySpanExporter,
) -> None:
    from django_microkit.request_id import outgoing_headers

    with continued_context(None, TraceContext(TRACE_ID, PARENT_ID, True)):
        traceparent = outgoing_headers()["traceparent"]
    trace_id, parent_id, flags = traceparent.split("-")[1:]
    assert (trace_id, flags) == (TRACE_ID, "01")
    assert parent_id != PARENT_ID


def test_the_current_spans_sampling_decision_is_sent_on(
    exporter: InMemorySpanExporter,
) -> None:
    from django_microkit.request_id import outgoing_headers

    current = trace.NonRecordingSpan(
        trace.SpanContext(
            int(TRACE_ID, 16), int(PARENT_ID, 16), False, trace.TraceFlags(1)
        )
    )
    unsampled = TraceContext(TRACE_ID, "1" * 16, False, "a=b")
    with continued_context(None, unsampled), trace.use_span(current):
        headers = outgoing_headers()
    del headers["X-Request-ID"]  # a new one: the context had none
    assert headers == {
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        "tracestate": "a=b",
    }


def test_server_attributes_leave_out_what_the_server_did_not_say(
    exporter: InMemorySpanExporter,
) -> None:
    tracing = get_tracing()
    assert tracing is not None
    request = RequestFactory().get("/odd path/é")
    request.META["SERVER_PORT"] = "http"
    attributes = tracing.server_attributes(request, "GET")
    assert attributes["url.path"] == "/odd%20path/%C3%A9"
    assert "server.port" not in attributes
    del request.META["SERVER_NAME"]
    assert "server.address" not in tracing.server_attributes(request, "GET")


def test_an_unsampled_request_records_no_client_span_and_says_so(
    catalog: ScriptedServer,
) -> None:
    catalog.script("/api/products/7/", Reply(503), Reply(json={"id": 7}))
    Client().get(
        "/client/products/7/", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}
    )
    assert EXPORTER.get_finished_spans() == ()
    for hit in catalog.hits():
        trace_id, parent_id, flags = (hit.header("traceparent") or "").split("-")[1:]
        assert (trace_id, flags) == (TRACE_ID, "00")
        assert parent_id != PARENT_ID


def test_an_unsampled_consumer_fails_quietly(exporter: InMemorySpanExporter) -> None:
    with (
        pytest.raises(ValueError),
        consumer_span("x process", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}),
    ):
        raise ValueError("handler failed")
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    "module",
    [
        "django_microkit.tracing",
        "django_microkit.tracing.checks",
        "django_microkit.request_id",
        "django_microkit.events.envelope",
        "django_microkit.client",
    ],
)
def test_each_side_of_the_trace_context_imports_first(module: str) -> None:
    # request_id and tracing import each other; whichever a process imports
    # first (a system check, a worker's handler) must load.
    subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": ""},
        check=True,
        capture_output=True,
    )
