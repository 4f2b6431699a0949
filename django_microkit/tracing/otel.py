"""The spans themselves, made with the OpenTelemetry SDK (the ``otel`` extra).

Imported only while ``MICROKIT["TRACING"]["ENABLED"]`` is on, by
:func:`django_microkit.tracing.get_tracing`. :class:`Tracing` owns this
process's ``TracerProvider`` (its resource, sampler, span processors) and makes
every span django-microkit starts; a service subclasses it and names the
subclass in ``TRACING_CLASS`` to name spans or set attributes its own way.

Span and trace IDs: the server span's parent is the caller's ``traceparent``,
built as a remote ``NonRecordingSpan``; a trace started here keeps the
trace-id :mod:`django_microkit.request_id` drew (or Sentry's), which
:class:`MicrokitIdGenerator` hands to the SDK. Sampling is the SDK's
(``OTEL_TRACES_SAMPLER``, by default ``parentbased_always_on``), so a caller's
sampled flag is respected.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from structlog.contextvars import bind_contextvars, bound_contextvars

from django_microkit.conf import TracingSettings, microkit_settings
from django_microkit.request_id import TraceContext

__all__ = [
    "INSTRUMENTATION_NAME",
    "ClientSpan",
    "MicrokitIdGenerator",
    "ServerSpan",
    "SpanKindName",
    "Tracing",
    "otlp_span_processor",
]

#: The instrumentation scope of every span django-microkit makes.
INSTRUMENTATION_NAME = "django_microkit"

_KINDS = {
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
    "internal": SpanKind.INTERNAL,
}
#: The kinds of span :meth:`Tracing.span` makes.
SpanKindName = Literal["server", "client", "producer", "consumer", "internal"]

# HTTP semantic conventions: a method outside the known set is "_OTHER".
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
_PATH_SAFE = "/:@&+$,-_.!~*'()"
_SAFE_PATH = re.compile(r"[A-Za-z0-9/:@&+$,\-_.!~*'()]*")
_MAX_PATH = 1024

# The trace-id the next root span takes (MicrokitIdGenerator); None: random.
_root_trace_id: ContextVar[int | None] = ContextVar(
    "microkit_root_trace_id", default=None
)


# The context of a span with no parent (a Context is immutable).
_NO_PARENT = otel_context.Context()


class MicrokitIdGenerator(RandomIdGenerator):
    """Random IDs, except for a trace started here: the trace-id
    :mod:`django_microkit.request_id` already drew and logged."""

    def generate_trace_id(self) -> int:
        trace_id = _root_trace_id.get()
        return super().generate_trace_id() if trace_id is None else trace_id


def otlp_span_processor() -> SpanProcessor:
    """The default ``SPAN_PROCESSORS`` entry: a ``BatchSpanProcessor`` over
    OTLP/HTTP (protobuf), both configured by the standard ``OTEL_*`` variables
    (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_SCHEDULE_DELAY``…)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    return BatchSpanProcessor(OTLPSpanExporter())


def _method(request_method: str | None) -> str:
    method = request_method or ""
    return method if method in _METHODS else "_OTHER"


def _hex_span_id(span: Span) -> str:
    return f"{span.get_span_context().span_id:016x}"


@lru_cache(maxsize=512)
def _normalized_route(route: str) -> str:
    """``route`` without a regular expression's ``^`` and ``$``, from ``/``:
    a service has a few hundred patterns at most, each normalised once."""
    route = route.removeprefix("^").removesuffix("$")
    return route if route.startswith("/") else "/" + route


def _remote_parent(parent: TraceContext) -> otel_context.Context:
    """A context whose span is the caller's, ``parent.parent_id``: the remote
    parent of a span."""
    assert parent.parent_id is not None
    state = TraceState.from_header([parent.tracestate]) if parent.tracestate else None
    remote = SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else 0),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


@dataclass
class ServerSpan:
    """A request's span while it is served, and the context it was made
    current in (handed back by :meth:`Tracing.start_server_span`).

    ``method`` is the request's method as the span names it (``_OTHER`` for
    an unknown one), worked out once when the span starts; ``None``: from the
    request again when it is finished.
    """

    tracing: Tracing
    span: Span
    token: object
    method: str | None = None

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """:meth:`Tracing.finish_server_span`: route and status."""
        self.tracing.finish_server_span(self, request, response)

    def end(self) -> None:
        """:meth:`Tracing.end_server_span`."""
        self.tracing.end_server_span(self)


@dataclass
class ClientSpan:
    """One attempt's span, made current while the attempt is sent."""

    tracing: Tracing
    span: Span
    token: object

    def end(self, status: int | None, error: str | None) -> None:
        """:meth:`Tracing.end_client_span`."""
        self.tracing.end_client_span(self, status, error)


class Tracing:
    """The spans of django-microkit, made through one ``TracerProvider``.

    Override :meth:`server_span_name`, :meth:`server_attributes`,
    :meth:`client_attributes` (or any other method) in a subclass named by
    ``MICROKIT["TRACING"]["TRACING_CLASS"]``.
    """

    #: Span name of a request that matched no URL pattern.
    UNMATCHED_ROUTE = "unmatched"

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        from django_microkit import __version__

        self.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)

    @classmethod
    def from_settings(cls, section: TracingSettings) -> Tracing:
        """A provider with this service's resource and ``SPAN_PROCESSORS``."""
        name = section["SERVICE_NAME"] or microkit_settings.SERVICE_NAME
        attributes: dict[str, str] = {}
        # The standard variable wins: OTEL_SERVICE_NAME names it explicitly.
        if name and not os.environ.get("OTEL_SERVICE_NAME"):
            attributes[SERVICE_NAME] = name
        version = microkit_settings.SERVICE_VERSION
        if version:
            attributes["service.version"] = version
        provider = TracerProvider(
            resource=Resource.create(attributes), id_generator=MicrokitIdGenerator()
        )
        for path in section["SPAN_PROCESSORS"]:
            provider.add_span_processor(import_string(path)())
        return cls(provider)

    # ----------------------------------------------------------------------
    # Server spans (RequestIDMiddleware)
    # ----------------------------------------------------------------------

    def start_server_span(
        self, request: HttpRequest, parent: TraceContext
    ) -> tuple[ServerSpan, TraceContext]:
        """Start and make current the span of ``request``, the child of
        ``parent``'s caller (or the root of ``parent``'s trace).

        Returns the span and ``parent`` with the sampling decision taken for a
        trace started here, which calls made while serving pass on.
        """
        method = _method(request.method)
        span = self._start(
            method,
            SpanKind.SERVER,
            self.server_attributes(request, method),
            parent,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        context = span.get_span_context()
        bind_contextvars(span_id=f"{context.span_id:016x}")
        if parent.parent_id is None:
            sampled = context.trace_flags.sampled
            if sampled != parent.sampled:
                # Made directly: _replace() takes three Python calls more, in
                # every trace started here.
                parent = TraceContext(
                    parent.trace_id, None, sampled, parent.tracestate, parent.random
                )
        return ServerSpan(self, span, token, method), parent

    def finish_server_span(
        self,
        served: ServerSpan,
        request: HttpRequest,
        response: HttpResponseBase,
    ) -> None:
        """Name the span after the route that answered, and give its status."""
        span = served.span
        if not span.is_recording():
            return
        method = served.method or _method(request.method)
        route = self.route(request)
        span.update_name(self.server_span_name(method, route))
        status = response.status_code
        # One by one: the SDK checks a mapping as a whole before its values.
        if route is not None:
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))

    def end_server_span(self, served: ServerSpan) -> None:
        """End the span, failed if an exception is passing through."""
        error = sys.exc_info()[1]
        if error is not None:
            self.fail(served.span, type(error).__qualname__)
        served.span.end()
        otel_context.detach(served.token)  # type: ignore[arg-type]

    def route(self, request: HttpRequest) -> str | None:
        """The URL pattern that matched (``/api/products/<int:pk>/``), never
        the raw path, without a regular expression's ``^`` and ``$``; ``None``
        when none did."""
        route = getattr(request.resolver_match, "route", None)
        if not isinstance(route, str) or not route:
            return None
        # A regular expression's anchors (re_path, DRF's routers) say nothing.
        return _normalized_route(route)

    def server_span_name(self, method: str, route: str | None) -> str:
        """``METHOD route``; ``METHOD unmatched`` for a request no URL pattern
        matched (a constant, never the raw path)."""
        return f"{method} {route or self.UNMATCHED_ROUTE}"

    def server_attributes(self, request: HttpRequest, method: str) -> dict[str, Any]:
        """The request's attributes by OpenTelemetry's HTTP server conventions
        (the server's name and port as the server saw them, never the raw
        ``Host`` header)."""
        meta = request.META
        path = request.path
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": request.scheme or "http",
            "url.path": path
            if len(path) <= _MAX_PATH and _SAFE_PATH.fullmatch(path)
            else quote(path[:_MAX_PATH], _PATH_SAFE),
        }
        if method == "_OTHER":
            attributes["http.request.method_original"] = ascii(
                (request.method or "")[:16]
            )[1:-1]
        server = meta.get("SERVER_NAME")
        if isinstance(server, str) and server:
            attributes["server.address"] = server[:255]
            port = meta.get("SERVER_PORT")
            if isinstance(port, str) and port.isdigit():
                attributes["server.port"] = int(port)
        return attributes

    # ----------------------------------------------------------------------
    # Client spans (ServiceClient)
    # ----------------------------------------------------------------------

    def start_client_span(
        self, service: str, method: str, url: str, attempt: int
    ) -> ClientSpan:
        """Start and make current the span of one attempt of a call: the
        ``traceparent`` it sends names this span as the parent."""
        span = self._start(
            method,
            SpanKind.CLIENT,
            self.client_attributes(service, method, url, attempt),
            None,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return ClientSpan(self, span, token)

    def end_client_span(
        self, sent: ClientSpan, status: int | None, error: str | None
    ) -> None:
        """End the attempt's span with the answer's status or the error's
        code (``timeout``, ``connection_error``…)."""
        span = sent.span
        if span.is_recording():
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            # Client spans: 4xx and 5xx are errors (HTTP conventions).
            failure = error or (str(status) if status and status >= 400 else None)
            if failure is not None:
                self.fail(span, failure)
        span.end()
        otel_context.detach(sent.token)  # type: ignore[arg-type]

    def client_attributes(
        self, service: str, method: str, url: str, attempt: int
    ) -> dict[str, Any]:
        """The attempt's attributes by the HTTP client conventions, with the
        called service as ``peer.service``. ``url.full`` has no query string,
        which may carry personal data."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        attributes: dict[str, Any] = {
            "http.request.method": _method(method),
            "peer.service": service,
            "url.full": parts._replace(query="", fragment="").geturl(),
            "server.address": parts.hostname or "",
        }
        port = parts.port or (443 if parts.scheme == "https" else 80)
        attributes["server.port"] = port
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        return attributes

    # ----------------------------------------------------------------------
    # Any other span (messages)
    # ----------------------------------------------------------------------

    @contextmanager
    def span(
        self,
        name: str,
        kind: SpanKindName = "internal",
        attributes: Mapping[str, Any] | None = None,
        *,
        parent: TraceContext | None = None,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        """A current span around the block: the child of ``parent`` (a
        message's trace context) when given, else of the current span.

        Log lines inside carry the span's ``span_id``. An exception escaping
        the block fails the span (``error.type``: its class; never its text or
        traceback). Without ``end_on_exit`` the span outlives the block, for
        its maker to ``end()``.
        """
        span = self._start(name, _KINDS[kind], dict(attributes or {}), parent)
        with (
            trace.use_span(
                span,
                end_on_exit=end_on_exit,
                record_exception=False,
                set_status_on_exception=False,
            ),
            bound_contextvars(span_id=_hex_span_id(span)),
        ):
            try:
                yield span
            except BaseException as error:
                self.fail(span, type(error).__qualname__)
                raise

    def fail(self, span: Span, error_type: str) -> None:
        """Mark ``span`` failed, with ``error.type`` (a class or a code)."""
        if span.is_recording():
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))

    def sampled_trace(self, span: Span, parent: TraceContext) -> TraceContext:
        """``parent`` with the sampling decision of ``span``, the root of a
        trace started here (a caller's decision is kept as it was)."""
        if parent.parent_id is not None:
            return parent
        sampled = span.get_span_context().trace_flags.sampled
        return parent if sampled == parent.sampled else parent._replace(sampled=sampled)

    def outgoing_trace(
        self, trace_context: TraceContext | None
    ) -> tuple[TraceContext, str] | None:
        """What an outgoing ``traceparent`` carries inside the current span:
        the span's trace (``trace_context``'s ``tracestate`` kept) and its ID
        as the parent-id; ``None`` outside any span."""
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        trace_id = f"{context.trace_id:032x}"
        sampled = context.trace_flags.sampled
        if trace_context is None or trace_context.trace_id != trace_id:
            trace_context = TraceContext(trace_id, None, sampled, random=True)
        elif trace_context.sampled != sampled:
            trace_context = trace_context._replace(sampled=sampled)
        return trace_context, f"{context.span_id:016x}"

    def _start(
        self,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        parent: TraceContext | None,
    ) -> Span:
        if parent is None:
            return self.tracer.start_span(name, kind=kind, attributes=attributes)
        if parent.parent_id is not None:
            context = _remote_parent(parent)
            return self.tracer.start_span(
                name, context=context, kind=kind, attributes=attributes
            )
        root = _root_trace_id.set(int(parent.trace_id, 16))
        try:
            return self.tracer.start_span(
                name, context=_NO_PARENT, kind=kind, attributes=attributes
            )
        finally:
            _root_trace_id.reset(root)
