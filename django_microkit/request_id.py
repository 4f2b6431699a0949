"""The request ID and trace context of the request being handled.

Readable from anywhere while a request is served, including code that has no
request object (a model method, a signal handler), through context variables:
each thread and each asyncio task sees only its own request's values.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["get_request_id"]

_request_id: ContextVar[str | None] = ContextVar("microkit_request_id", default=None)


def get_request_id() -> str | None:
    """The ID of the request being handled, or ``None`` outside a request."""
    return _request_id.get()
