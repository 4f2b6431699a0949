"""Error reporting to Sentry, with the request ID and trace ID on every event.

An operator who reads ``"request_id": "9f1c…"`` in a problem body or a log line
finds the matching Sentry event by that tag. Sentry starts when Django does if
``MICROKIT["SENTRY"]["DSN"]`` is set (:func:`init_sentry`); without a DSN it
stays off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sentry_sdk
from django.core.checks import CheckMessage, Error
from sentry_sdk.utils import BadDsn, Dsn

from django_microkit.checks import is_number
from django_microkit.conf import microkit_settings
from django_microkit.request_id import get_request_id, get_trace_context

if TYPE_CHECKING:
    from collections.abc import Callable

    from sentry_sdk.types import Event, Hint

    _EventHook = Callable[[Event, Hint], Event | None]

__all__ = ["before_send", "check_sentry", "init_sentry"]

_logger = logging.getLogger("django_microkit.sentry")


def before_send(event: Event, hint: Hint) -> Event:
    """Tags ``event`` with ``request_id``, ``trace_id`` and ``service``.

    Installed by :func:`init_sentry`. A service that initialises sentry-sdk
    itself passes it as ``before_send`` (and ``before_send_transaction``).
    """
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = event["tags"] = {}
    request_id = get_request_id()
    if request_id is not None:
        tags.setdefault("request_id", request_id)
    trace = get_trace_context()
    if trace is not None:
        tags.setdefault("trace_id", trace.trace_id)
    service = microkit_settings.SERVICE_NAME
    if service:
        tags.setdefault("service", service)
    return event


def _then(hook: _EventHook | None) -> _EventHook:
    """:func:`before_send` followed by the service's own hook, if any."""
    if hook is None:
        return before_send

    def chained(event: Event, hint: Hint) -> Event | None:
        return hook(before_send(event, hint), hint)

    return chained


def _dsn_error(dsn: object) -> str | None:
    """Why ``dsn`` cannot be used, or ``None`` when it can (or is empty)."""
    if not isinstance(dsn, str):
        return f"it must be a string, not {type(dsn).__name__}"
    if not dsn:
        return None
    try:
        Dsn(dsn)
    except BadDsn as exc:
        return str(exc)
    return None


def init_sentry(**options: Any) -> bool:
    """Initialise sentry-sdk from ``MICROKIT["SENTRY"]``; ``False`` if it stays
    off.

    Django's start-up calls it when a DSN is set. Keyword arguments go to
    ``sentry_sdk.init`` over the settings (``transport=`` in tests); a
    ``before_send`` given here runs after the tagging hook. An invalid DSN in
    the settings (check ``E027``) is logged, not raised: a server starts anyway.
    """
    section = microkit_settings.SENTRY
    dsn = options.pop("dsn", None)
    if dsn is None:
        dsn = section["DSN"]
        error = _dsn_error(dsn)
        if error is not None:
            _logger.error(
                "Sentry is off: MICROKIT['SENTRY']['DSN'] is invalid: %s", error
            )
            return False
    if not dsn:
        return False
    options.setdefault("environment", section["ENVIRONMENT"] or None)
    options.setdefault(
        "release", section["RELEASE"] or microkit_settings.SERVICE_VERSION or None
    )
    options.setdefault("sample_rate", section["SAMPLE_RATE"])
    options.setdefault("traces_sample_rate", section["TRACES_SAMPLE_RATE"])
    options["before_send"] = _then(options.get("before_send"))
    options["before_send_transaction"] = _then(options.get("before_send_transaction"))
    sentry_sdk.init(dsn=dsn, **options)
    return True


def check_sentry(**kwargs: Any) -> list[CheckMessage]:
    """``E026``, ``E027``: a usable DSN and sample rates between 0 and 1."""
    section = microkit_settings.SENTRY
    messages: list[CheckMessage] = []
    error = _dsn_error(section["DSN"])
    if error is not None and isinstance(section["DSN"], str):
        messages.append(
            Error(
                f"MICROKIT['SENTRY']['DSN'] is not a valid Sentry DSN: {error}.",
                hint="Copy the DSN from the Sentry project's settings, "
                "or leave it empty to keep Sentry off.",
                id="django_microkit.E027",
            )
        )
    for key in ("SAMPLE_RATE", "TRACES_SAMPLE_RATE"):
        rate = section[key]
        if is_number(rate) and not 0 <= rate <= 1:
            messages.append(
                Error(
                    f"MICROKIT['SENTRY'][{key!r}] is {rate!r}, not between 0 and 1.",
                    hint="A sample rate is a fraction: 1.0 keeps every event, "
                    "0.0 none.",
                    id="django_microkit.E026",
                )
            )
    return messages
