"""OpenTelemetry spans on django-microkit's own trace context.

With ``MICROKIT["TRACING"]["ENABLED"]`` (and the ``otel`` extra installed) every
request gets a server span, every :class:`~django_microkit.client.ServiceClient`
attempt a client span, and a producer or consumer of messages one span per
message, all on the trace-id and parent-id that
:mod:`django_microkit.request_id` parses and forwards: there is one trace
context, never a second one beside it. The server span is the child of the
caller's ``traceparent``; the ``traceparent`` of each outgoing call names the
client span as its parent, so the called service's server span is that span's
child. Log lines carry the span's ID as ``span_id``.

Spans are exported by the span processors ``SPAN_PROCESSORS`` names, by
default OTLP over HTTP configured by the standard ``OTEL_*`` variables
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``…).

This module imports nothing from opentelemetry: with tracing off, the request
path asks one derived value and moves on. :func:`producer_span` and
:func:`consumer_span` work either way, for code that sends or handles messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, cast

from django.utils.module_loading import import_string

# The module, not its names: request_id imports this module while it loads.
from django_microkit import request_id
from django_microkit.conf import derived, microkit_settings

if TYPE_CHECKING:
    from django_microkit.request_id import TraceContext
    from django_microkit.tracing.otel import ClientSpan, Tracing

__all__ = [
    "REQUEST_ID_KEY",
    "consumer_span",
    "get_tracing",
    "message_headers",
    "producer_span",
    "start_client_span",
]

#: The key of the request ID among a message's headers (:func:`message_headers`).
REQUEST_ID_KEY = "request_id"


@derived(fork_safe=True)
def get_tracing() -> Tracing | None:
    """The :class:`~django_microkit.tracing.otel.Tracing` of this process, or
    ``None`` while ``MICROKIT["TRACING"]["ENABLED"]`` is off.

    Built on first use from the settings (``TRACING_CLASS``), again after
    ``MICROKIT`` changes and in a forked child (a worker process exports
    through processors of its own).
    """
    section = microkit_settings.TRACING
    if not section["ENABLED"]:
        return None
    tracing_class = import_string(section["TRACING_CLASS"])
    return cast("Tracing", tracing_class.from_settings(section))


def start_client_span(
    service: str, method: str, url: str, attempt: int
) -> ClientSpan | None:
    """The span of one attempt of a :class:`~django_microkit.client.ServiceClient`
    call, made current until its ``end(status, error)``; ``None`` with tracing
    off. The ``traceparent`` the attempt sends names this span as its parent.
    """
    tracing = get_tracing()
    if tracing is None:
        return None
    return tracing.start_client_span(service, method, url, attempt)


def message_headers() -> dict[str, str]:
    """What a message sent now carries to continue the current trace.

    ``traceparent`` (a child of the current span, or of the request's caller
    with tracing off), ``tracestate`` when one is kept, and ``request_id`` while
    a request or a consumed message is handled.
    """
    headers = request_id.outgoing_headers()
    headers.pop(microkit_settings.REQUEST_ID["HEADER"], None)
    current = request_id.get_request_id()
    if current is not None:
        headers[REQUEST_ID_KEY] = current
    return headers


def _received(
    headers: Mapping[str, Any],
) -> tuple[str | None, TraceContext | None]:
    """The request ID and trace context a received message carries, each
    ``None`` when absent or invalid (a bad value is never an error)."""
    received = headers.get(REQUEST_ID_KEY)
    if not (isinstance(received, str) and request_id.is_valid_request_id(received)):
        received = None
    traceparent = headers.get(request_id.TRACEPARENT_HEADER)
    trace = (
        request_id.parse_traceparent(traceparent)
        if isinstance(traceparent, str)
        else None
    )
    tracestate = headers.get(request_id.TRACESTATE_HEADER)
    if trace is not None and isinstance(tracestate, str):
        trace = trace._replace(tracestate=request_id.parse_tracestate(tracestate))
    return received, trace


@contextmanager
def producer_span(
    name: str,
    *,
    headers: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, str]]:
    """A ``PRODUCER`` span around sending one message; gives its headers.

    ::

        with producer_span("orders.order.created.v1 publish") as headers:
            broker.publish(body, headers=headers)

    The span is the child of the current span (the request's), or, when
    ``headers`` holds the ``traceparent`` (and ``request_id``) a message was
    given earlier (an outbox row, sent later by a relay), the child of that
    one. The headers yielded (:func:`message_headers`) name the producer span
    as the parent, so the consumer's span is its child. With tracing off there
    is no span and the headers continue the trace all the same.
    """
    received, trace = _received(headers) if headers is not None else (None, None)
    with ExitStack() as stack:
        if trace is not None:
            received = received or request_id.get_request_id()
            stack.enter_context(request_id.continued_context(received, trace))
        tracing = get_tracing()
        if tracing is not None:
            stack.enter_context(
                tracing.span(name, "producer", attributes, parent=trace)
            )
        yield message_headers()


@contextmanager
def consumer_span(
    name: str,
    headers: Mapping[str, Any],
    *,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """A ``CONSUMER`` span around handling one message, continuing its trace.

    ::

        with consumer_span("orders.order.created.v1 process", event_headers):
            handler(event)

    ``headers`` are the message's (``traceparent``, ``tracestate``,
    ``request_id``; invalid ones are ignored, a missing ``traceparent``
    starts a new trace). Inside, log lines carry the message's ``request_id``
    and its ``trace_id`` (and ``span_id``), and calls to other services and
    messages sent continue its trace, as while a request is handled. An
    exception escaping the block marks the span failed and propagates.
    """
    received, trace = _received(headers)
    trace = trace or request_id.TraceContext.new()
    tracing = get_tracing()
    if tracing is None:
        with request_id.continued_context(received, trace):
            yield
        return
    with (
        tracing.span(name, "consumer", attributes, parent=trace) as span,
        request_id.continued_context(received, tracing.sampled_trace(span, trace)),
    ):
        yield
