"""Spans across the two example services, exported over OTLP/HTTP to a
receiver of this test that decodes the protobuf: orders (uvicorn) calls
catalog (gunicorn), and the spans form one trace, each the child of the one
before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.conftest import Spawner, Stack
from tests.e2e.servers import ServiceProcess

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
ORDER = {"items": [{"product_id": 4, "quantity": 1}]}


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint: ``POST /v1/traces`` of protobuf."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, Span]] = []  # (service.name, span)
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def of_trace(self, trace_id: str) -> list[tuple[str, Span]]:
        with self.lock:
            return [
                (s, span) for s, span in self.spans if span.trace_id.hex() == trace_id
            ]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or (
            self.headers.get("Content-Type") != "application/x-protobuf"
        ):
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value
                    for a in resource_spans.resource.attributes
                }
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.spans.append((attributes["service.name"], span))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def traced(
    stack: Stack, spawner: Spawner, receiver: Receiver
) -> tuple[ServiceProcess, ServiceProcess]:
    """A catalog and an orders instance of the stack's databases, tracing on."""
    tracing = {
        "TRACING_ENABLED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    catalog = spawner.spawn(
        "catalog-traced", "catalog", "gunicorn", {**stack.catalog.env, **tracing}
    )
    orders = spawner.spawn(
        "orders-traced",
        "orders",
        "uvicorn",
        {**stack.orders.env, **tracing, "CATALOG_URL": catalog.url},
    )
    return catalog, orders


def _spans(receiver: Receiver, trace_id: str) -> list[tuple[str, Span]]:
    """The trace's spans once both services' server spans have arrived (each
    process exports in its own batches, the outermost span last)."""
    deadline = time.monotonic() + 15
    while True:
        spans = receiver.of_trace(trace_id)
        servers = {s for s, span in spans if span.kind == Span.SPAN_KIND_SERVER}
        if servers == {"orders", "catalog"} or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def test_an_order_is_one_trace_across_both_services(
    traced: tuple[ServiceProcess, ServiceProcess], receiver: Receiver
) -> None:
    _, orders = traced
    response = requests.post(
        orders.url + "/api/orders/",
        json=ORDER,
        headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    spans = _spans(receiver, TRACE_ID)
    (orders_server,) = [
        span
        for service, span in spans
        if service == "orders" and span.kind == Span.SPAN_KIND_SERVER
    ]
    assert orders_server.name == "POST /api/orders/"
    assert orders_server.parent_span_id.hex() == CALLER_SPAN
    # The order's event is made in a producer span of the request (it ends,
    # and is exported, before the server span).
    (producer,) = [span for _, span in spans if span.kind == Span.SPAN_KIND_PRODUCER]
    assert producer.name == "orders.order.placed.v1 create"
    assert producer.parent_span_id == orders_server.span_id
    clients = [span for service, span in spans if span.kind == Span.SPAN_KIND_CLIENT]
    catalog_servers = [
        span
        for service, span in spans
        if service == "catalog" and span.kind == Span.SPAN_KIND_SERVER
    ]
    assert clients and catalog_servers
    for client in clients:
        assert client.parent_span_id == orders_server.span_id
        attributes = {a.key: a.value for a in client.attributes}
        assert attributes["peer.service"].string_value == "catalog"
    # Each catalog request is the child of the client span that sent it.
    client_ids = {client.span_id for client in clients}
    for server in catalog_servers:
        assert server.parent_span_id in client_ids
        assert server.name.startswith(("GET /api/", "POST /api/"))
    assert {span.trace_id.hex() for _, span in spans} == {TRACE_ID}
