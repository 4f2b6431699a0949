"""The span processor of the tracing tests: spans kept in memory, exported as
each ends (``MICROKIT["TRACING"]["SPAN_PROCESSORS"]``)."""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

EXPORTER = InMemorySpanExporter()


def processor() -> SpanProcessor:
    return SimpleSpanProcessor(EXPORTER)
