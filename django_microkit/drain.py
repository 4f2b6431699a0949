"""Draining: the moments between SIGTERM and the end of a server process.

A load balancer keeps sending requests to an instance until its readiness
probe fails. So on SIGTERM the process first *drains*: readiness answers 503
at once (liveness stays 200: the process is healthy, it must not be killed),
requests keep being served for ``MICROKIT["DRAIN"]["DELAY"]`` seconds while
the balancers notice, then the server's own graceful stop begins: it stops
accepting and lets the requests in flight finish.

The server helpers wire it: ``gunicorn -c python:django_microkit.gunicorn``
(:mod:`django_microkit.gunicorn`) and ``python -m django_microkit.uvicorn``
(:mod:`django_microkit.uvicorn`). :func:`start_draining` is for any other
server.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.checks import CheckMessage

from django_microkit.checks import Issue, is_number
from django_microkit.conf import microkit_settings

__all__ = [
    "MAX_DELAY",
    "check_drain",
    "drain_delay",
    "is_draining",
    "start_draining",
    "stop_draining",
]

logger = logging.getLogger("django_microkit.drain")

#: The longest ``DELAY`` accepted, in seconds.
MAX_DELAY = 300.0

# A plain flag, not a threading.Event: start_draining() runs in signal
# handlers, and one that takes a lock deadlocks when a second signal arrives
# while the first holds it.
_draining = False


def is_draining() -> bool:
    """Whether this process is draining: readiness answers 503."""
    return _draining


def start_draining() -> None:
    """Start draining this process (once; later calls change nothing)."""
    global _draining
    if not _draining:
        _draining = True
        logger.info("Draining: readiness fails from now on.")


def stop_draining() -> None:
    """Serve readiness again (for tests, and a server that cancels a stop)."""
    global _draining
    _draining = False


def drain_delay() -> float:
    """``MICROKIT["DRAIN"]["DELAY"]``, held within 0 and :data:`MAX_DELAY`."""
    delay = microkit_settings.DRAIN["DELAY"]
    return min(max(float(delay), 0.0), MAX_DELAY) if is_number(delay) else 0.0


def check_drain(**kwargs: Any) -> list[CheckMessage]:
    """``E110``: ``DRAIN["DELAY"]`` is between 0 and :data:`MAX_DELAY` seconds."""
    delay = microkit_settings.DRAIN["DELAY"]
    if not is_number(delay) or 0 <= delay <= MAX_DELAY:
        return []  # E003 reports a wrong type.
    issue = Issue(
        "django_microkit.E110",
        f"MICROKIT['DRAIN']['DELAY'] is {delay!r}.",
        f"Give the seconds to keep serving after SIGTERM, 0 to {MAX_DELAY:g} "
        "(a few more than your load balancer's probe interval), and a server "
        "graceful timeout longer than that plus your longest request.",
    )
    return [issue.message()]
