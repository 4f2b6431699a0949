"""System checks of events (``MICROKIT["EVENTS"]``): publishing (the
producer's side, run only when ``"django_microkit.events"`` is installed) and
consuming (the handlers and the worker's numbers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from django_microkit.checks import Issue, is_number, is_subclass_path
from django_microkit.conf import microkit_settings

__all__ = ["check_consuming", "check_publishing", "check_publishing_deploy"]

_APP = "django_microkit.events"
_TRANSPORT = "django_microkit.events.transport.Transport"
# Keys that must be a number of seconds > 0, and counts that must be >= 1.
_POSITIVE = ("PUBLISH_TIMEOUT", "RELAY_INTERVAL", "RETRY_BACKOFF")
_AT_LEAST_ONE = ("RELAY_BATCH_SIZE", "MAX_EVENT_SIZE")


def check_publishing(**kwargs: Any) -> list[CheckMessage]:
    """A transport and sound numbers."""
    if not apps.is_installed(_APP):
        return []
    section = microkit_settings.EVENTS
    issues: list[Issue] = []
    transport = section["TRANSPORT_CLASS"]
    if isinstance(transport, str) and not is_subclass_path(transport, _TRANSPORT):
        issues.append(
            Issue(
                "django_microkit.E082",
                f"MICROKIT['EVENTS']['TRANSPORT_CLASS'] is {transport!r}, which "
                "cannot be imported or is not a Transport.",
                f"Name a subclass of {_TRANSPORT} by its dotted path (default "
                "'django_microkit.events.kombu.KombuTransport').",
            )
        )
    issues.extend(_number_issues(section))
    return [issue.message() for issue in issues]


def _signing_key_issues() -> list[Issue]:
    from django_microkit.service_auth.keys import get_config

    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # the service-auth checks say what is wrong
    if config.signing_key is not None:
        return []
    return [
        Issue(
            "django_microkit.W081",
            "'django_microkit.events' is installed but "
            "MICROKIT['SERVICE_AUTH']['SIGNING_KEYS'] is empty: this service "
            "can consume events but not publish them (consumers refuse "
            "unsigned events).",
            "Give the service a signing key (`manage.py microkit_service_key`) "
            "and its public key to the consuming services' PEERS; a service "
            "that only consumes may silence this warning.",
        )
    ]


def _number_issues(section: Any) -> list[Issue]:
    issues: list[Issue] = []
    for key in _POSITIVE:
        value = section[key]
        if is_number(value) and not value > 0:
            issues.append(_range(key, value, "a number of seconds greater than 0"))
    for key in _AT_LEAST_ONE:
        value = section[key]
        if is_number(value) and value < 1:
            issues.append(_range(key, value, "at least 1"))
    retention = section["OUTBOX_RETENTION"]
    if is_number(retention) and retention < 0:
        issues.append(_range("OUTBOX_RETENTION", retention, "0 or more seconds"))
    backoff, most = section["RETRY_BACKOFF"], section["RETRY_BACKOFF_MAX"]
    if is_number(backoff) and is_number(most) and most < backoff:
        issues.append(
            Issue(
                "django_microkit.W080",
                f"MICROKIT['EVENTS']['RETRY_BACKOFF_MAX'] ({most!r}) is below "
                f"RETRY_BACKOFF ({backoff!r}): every retry waits RETRY_BACKOFF_MAX.",
                "Make RETRY_BACKOFF_MAX the longest wait, above RETRY_BACKOFF.",
            )
        )
    warn, fail = section["LAG_WARN"], section["LAG_FAIL"]
    if is_number(warn) and is_number(fail) and not 0 < warn <= fail:
        issues.append(
            Issue(
                "django_microkit.E084",
                f"MICROKIT['EVENTS']['LAG_WARN'] is {warn!r} and LAG_FAIL {fail!r}.",
                "Give seconds with 0 < LAG_WARN <= LAG_FAIL: the outbox check "
                "warns first, then fails.",
            )
        )
    return issues


def _range(
    key: str, value: Any, expected: str, id: str = "django_microkit.E083"
) -> Issue:
    return Issue(
        id,
        f"MICROKIT['EVENTS'][{key!r}] is {value!r}.",
        f"Use {expected}.",
    )


def check_publishing_deploy(**kwargs: Any) -> list[CheckMessage]:
    """Production only: a source name, a signing key and a real broker (not
    the filesystem transport)."""
    if not apps.is_installed(_APP):
        return []
    section = microkit_settings.EVENTS
    issues: list[Issue] = []
    if not microkit_settings.SERVICE_NAME:
        issues.append(
            Issue(
                "django_microkit.E080",
                "'django_microkit.events' is installed but MICROKIT['SERVICE_NAME'] "
                "is empty: events need a source.",
                "Name the service: it is every event's source, its exchange and "
                "the first word of its event types.",
            )
        )
    issues.extend(_signing_key_issues())
    if (
        not section["BROKER_URL"]
        and section["TRANSPORT_CLASS"] == "django_microkit.events.kombu.KombuTransport"
    ):
        issues.append(_NO_BROKER)
    return [issue.message() for issue in issues]


_NO_BROKER = Issue(
    "django_microkit.E085",
    "MICROKIT['EVENTS']['BROKER_URL'] is empty: events go through kombu's "
    "filesystem transport, which only the processes of one machine share.",
    "Set BROKER_URL to the broker (amqp://user:password@rabbitmq:5672/vhost), "
    "from the environment.",
)


# --- consuming ------------------------------------------------------------------


def check_consuming(**kwargs: Any) -> list[CheckMessage]:
    """Every ``HANDLERS`` entry resolves to a handler of a known producer, and
    the worker's numbers are in range."""
    from django_microkit.events.handlers import build_handlers
    from django_microkit.service_auth.keys import build_config

    section = microkit_settings.EVENTS
    handlers = section["HANDLERS"]
    issues: list[Issue] = []
    if handlers and not apps.is_installed(_APP):
        issues.append(
            Issue(
                "django_microkit.E096",
                "MICROKIT['EVENTS']['HANDLERS'] is set but 'django_microkit.events' "
                "is not in INSTALLED_APPS: the worker has no inbox to record "
                "events in.",
                "Add 'django_microkit.events' to INSTALLED_APPS and run migrate.",
            )
        )
    if isinstance(handlers, Mapping):  # else E003 reports it
        config, _issues = build_config(
            microkit_settings.SERVICE_NAME, microkit_settings.SERVICE_AUTH
        )
        issues += build_handlers(handlers, config)[1]
    issues += _worker_issues(section)
    return [issue.message() for issue in issues]


_WORKER_AT_LEAST_ONE = ("MAX_ATTEMPTS", "PREFETCH")
_WORKER_RANGE = "django_microkit.E095"
_WORKER_NOT_NEGATIVE = ("HANDLER_BACKOFF", "HANDLER_BACKOFF_MAX", "INBOX_RETENTION")


def _worker_issues(section: Any) -> list[Issue]:
    issues = []
    for key in _WORKER_AT_LEAST_ONE:
        value = section[key]
        if is_number(value) and value < 1:
            issues.append(_range(key, value, "at least 1", _WORKER_RANGE))
    for key in _WORKER_NOT_NEGATIVE:
        value = section[key]
        if is_number(value) and value < 0:
            issues.append(_range(key, value, "0 or more", _WORKER_RANGE))
    inbox, outbox = section["INBOX_RETENTION"], section["OUTBOX_RETENTION"]
    if is_number(inbox) and is_number(outbox) and 0 <= inbox < outbox:
        issues.append(
            Issue(
                "django_microkit.W090",
                f"MICROKIT['EVENTS']['INBOX_RETENTION'] ({inbox} s) is shorter than "
                f"OUTBOX_RETENTION ({outbox} s): an event redelivered after its "
                "inbox row was pruned is handled a second time.",
                "Keep handled events at least as long as producers keep sent "
                "ones (INBOX_RETENTION >= OUTBOX_RETENTION).",
            )
        )
    return issues
