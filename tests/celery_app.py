"""The Celery app of the task tests, and a view that sends its task.

The broker is ``CELERY_BROKER_URL`` (a queue of the run's own,
``CELERY_TEST_QUEUE``), in memory by default; results come back over the
broker (``rpc://``) or, in memory, through the cache backend.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery import Celery, signals
from django.http import HttpRequest, JsonResponse
from django.urls import path

import django_microkit.celery
from django_microkit.request_id import get_request_id, get_trace_context
from django_microkit.tracing import message_headers

BROKER = os.environ.get("CELERY_BROKER_URL", "memory://")

app = Celery("tests")
app.conf.update(
    broker_url=BROKER,
    result_backend="cache+memory://" if BROKER == "memory://" else "rpc://",
    task_default_queue=os.environ.get("CELERY_TEST_QUEUE", "microkit-tests"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=False,
)
django_microkit.celery.connect_signals()


@signals.setup_logging.connect  # type: ignore[untyped-decorator]
def keep_logging(**kwargs: Any) -> None:
    """The worker keeps the process's logging (django-microkit's JSON lines):
    with a receiver here, Celery configures none of its own."""


@app.task(name="tests.seen")  # type: ignore[untyped-decorator]
def seen(fail: bool = False) -> dict[str, Any]:
    """What the task sees of the request that sent it, and logs a line."""
    structlog.get_logger("tests.task").info("task ran")
    if fail:
        raise ValueError("task failed")
    trace = get_trace_context()
    return {
        "request_id": get_request_id(),
        "trace_id": trace.trace_id if trace else None,
        "tracestate": trace.tracestate if trace else None,
        "outgoing": message_headers(),
    }


#: The app the view sends through (a test may send through another broker's).
SENDER = app


def send(request: HttpRequest) -> JsonResponse:
    """Sends the task while handling the request; answers with its id."""
    result = SENDER.send_task("tests.seen", kwargs={"fail": "fail" in request.GET})
    trace = get_trace_context()
    return JsonResponse(
        {
            "task_id": result.id,
            "request_id": get_request_id(),
            "trace_id": trace.trace_id if trace else None,
        }
    )


urlpatterns = [path("send", send)]
