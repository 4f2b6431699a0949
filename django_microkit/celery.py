"""Celery tasks that continue the request (or task) that sent them.

A task published while a request is handled carries its ``request_id``,
``traceparent`` and ``tracestate`` in the message headers; the worker binds
them while the task runs, so its log lines carry the same ``request_id`` and
``trace_id`` as the request's, and the calls and tasks it sends continue the
trace. With tracing on (:mod:`django_microkit.tracing`) publishing is a
``PRODUCER`` span and running a ``CONSUMER`` span, its child.

Connect it once, where the Celery app is made (``proj/celery.py``), in the
web processes and the workers alike::

    app = Celery("orders")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    django_microkit.celery.connect_signals()

Needs the ``celery`` extra; this module is never imported by django-microkit
itself.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from celery import signals

from django_microkit.request_id import TRACEPARENT_HEADER, TRACESTATE_HEADER
from django_microkit.tracing import (
    REQUEST_ID_KEY,
    consumer_span,
    get_tracing,
    message_headers,
)

__all__ = ["connect_signals", "disconnect_signals"]

# What prerun entered, by task id, until postrun leaves it: the two run in the
# worker's thread (or greenlet) of the task, one after the other.
_running: dict[str, ExitStack] = {}
# Producer spans between before_task_publish and after_task_publish, by task id.
_publishing: dict[str, Any] = {}


def _before_publish(
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    **kwargs: Any,
) -> None:
    """Adds the headers; Celery's protocol 2 keeps them beside its own, and the
    worker's ``task.request`` has them as attributes."""
    if headers is None:  # pragma: no cover - Celery's protocol 1
        return
    task_id, name = headers.get("id"), headers.get("task")
    tracing = get_tracing()
    if tracing is None or not isinstance(task_id, str):
        headers.update(message_headers())
        return
    attributes = {
        "messaging.system": "celery",
        "messaging.operation.type": "send",
        "messaging.destination.name": routing_key or "",
        "messaging.message.id": task_id,
    }
    # Current only while the headers are made: should the publish fail, no
    # after_task_publish ends it, and it must not stay the request's span.
    with tracing.span(
        f"{name} publish", "producer", attributes, end_on_exit=False
    ) as span:
        headers.update(message_headers())
    _publishing[task_id] = span


def _after_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    task_id = (headers or {}).get("id")
    span = _publishing.pop(task_id, None) if isinstance(task_id, str) else None
    if span is not None:
        span.end()


def _prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    carried = {
        key: getattr(request, key, None)
        for key in (REQUEST_ID_KEY, TRACEPARENT_HEADER, TRACESTATE_HEADER)
    }
    stack = ExitStack()
    stack.enter_context(
        consumer_span(
            f"{getattr(task, 'name', None)} process",
            carried,
            attributes={
                "messaging.system": "celery",
                "messaging.operation.type": "process",
                "messaging.message.id": task_id or "",
            },
        )
    )
    _running[task_id or ""] = stack


def _failure(
    task_id: str | None = None, exception: BaseException | None = None, **kwargs: Any
) -> None:
    """The task raised: its span fails (sent before ``task_postrun``)."""
    stack = _running.pop(task_id or "", None)
    if stack is not None:
        error = exception or RuntimeError("task failed")
        stack.__exit__(type(error), error, None)


def _postrun(task_id: str | None = None, **kwargs: Any) -> None:
    stack = _running.pop(task_id or "", None)
    if stack is not None:
        stack.close()


_HANDLERS = (
    (signals.before_task_publish, _before_publish),
    (signals.after_task_publish, _after_publish),
    (signals.task_prerun, _prerun),
    (signals.task_failure, _failure),
    (signals.task_postrun, _postrun),
)


def connect_signals() -> None:
    """Connect the handlers to Celery's signals (again: no second copy)."""
    for signal, handler in _HANDLERS:
        signal.connect(
            handler, weak=False, dispatch_uid=f"{__name__}.{handler.__name__}"
        )


def disconnect_signals() -> None:
    """Undo :func:`connect_signals`."""
    for signal, handler in _HANDLERS:
        signal.disconnect(handler, dispatch_uid=f"{__name__}.{handler.__name__}")
