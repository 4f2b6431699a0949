"""The handlers of the events a service consumes, and the checks of that list.

``MICROKIT["EVENTS"]["HANDLERS"]`` maps each event type the service consumes to
its handler's dotted path: an :class:`EventHandler` subclass (DRF's habit: a
``serializer_class`` validates ``event.data``, ``handle()`` acts on the result)
or a plain function ``handler(event, data)``::

    class OrderPlaced(EventHandler):
        serializer_class = OrderPlacedSerializer

        def handle(self, event, data):
            reserve_stock(data["order"], data["items"])

    MICROKIT = {"EVENTS": {"HANDLERS": {
        "orders.order.placed.v1": "catalog.events.OrderPlaced",
    }}}

The table is resolved once (:func:`get_handlers`); its findings are the same
:class:`~django_microkit.checks.Issue`\\ s ``manage.py check`` reports
(:func:`~django_microkit.events.checks.check_consuming`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from rest_framework.serializers import BaseSerializer

from django_microkit.checks import Issue
from django_microkit.conf import derived, microkit_settings
from django_microkit.events.envelope import Event, validate_event_type
from django_microkit.service_auth.keys import ServiceAuthConfig

__all__ = [
    "EventHandler",
    "FunctionHandler",
    "HandlerTable",
    "InvalidEventData",
    "build_handlers",
    "get_handlers",
]

_WHERE = "MICROKIT['EVENTS']"


class InvalidEventData(Exception):
    """The event's data failed its handler's validation: the event is a dead
    letter (``invalid_data``) at once, without retries. ``detail`` is the
    validation errors, as DRF gives them."""

    def __init__(self, detail: Any) -> None:
        super().__init__(str(detail))
        self.detail = detail


class EventHandler:
    """Handles the events of one or more types, each in the transaction that
    records it in the inbox.

    Set ``serializer_class`` to validate ``event.data`` with a DRF serializer:
    invalid data is a dead letter (``invalid_data``) at once, valid data reaches
    :meth:`handle` as the serializer's ``validated_data``. Without one,
    ``handle`` gets ``event.data`` as it is. An exception from ``handle``
    rolls the transaction back; the event is retried with backoff and, after
    ``MAX_ATTEMPTS``, becomes a dead letter (``handler_failed``).
    """

    serializer_class: type[BaseSerializer[Any]] | None = None

    def get_serializer_context(self, event: Event) -> dict[str, Any]:
        """The serializer's context: the event, as ``context["event"]``."""
        return {"event": event}

    def get_serializer(self, event: Event) -> BaseSerializer[Any] | None:
        """The serializer of ``event.data``, or ``None`` to take it as it is."""
        if self.serializer_class is None:
            return None
        return self.serializer_class(
            data=event.data, context=self.get_serializer_context(event)
        )

    def validate(self, event: Event) -> Any:
        """``event.data`` validated, or :class:`InvalidEventData`."""
        serializer = self.get_serializer(event)
        if serializer is None:
            return event.data
        if not serializer.is_valid():
            raise InvalidEventData(serializer.errors)
        return serializer.validated_data

    def handle(self, event: Event, data: Any) -> None:
        """Act on ``event``; ``data`` is its validated data."""
        raise NotImplementedError(
            f"{type(self).__name__} must define handle(event, data)."
        )


class FunctionHandler(EventHandler):
    """A plain function ``function(event, data)`` as a handler (``data`` is
    ``event.data``, unvalidated)."""

    def __init__(self, function: Callable[[Event, Any], object]) -> None:
        self.function = function

    def handle(self, event: Event, data: Any) -> None:
        self.function(event, data)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"FunctionHandler({name})"


@dataclass(frozen=True)
class HandlerTable:
    """The handlers of ``HANDLERS``, resolved: ``handlers`` maps each event type
    to its handler, ``bindings`` each producer to the types taken from it (what
    the worker binds its queue to)."""

    handlers: Mapping[str, EventHandler]
    bindings: Mapping[str, tuple[str, ...]]

    def get(self, event_type: str) -> EventHandler | None:
        return self.handlers.get(event_type)


def build_handlers(
    configured: Mapping[Any, Any], config: ServiceAuthConfig | None = None
) -> tuple[HandlerTable, list[Issue]]:
    """Resolve ``configured`` (a ``HANDLERS`` value); an entry with a finding is
    left out of the table. With ``config``, a producer that is not one of its
    peers with keys is a finding too (its events would all be refused)."""
    handlers: dict[str, EventHandler] = {}
    issues: list[Issue] = []
    for event_type, target in configured.items():
        path = f"{_WHERE}['HANDLERS'][{event_type!r}]"
        try:
            validate_event_type(event_type)
        except ValueError as exc:
            issues.append(
                Issue(
                    "django_microkit.E090",
                    f"{path}: {exc}",
                    "Name the type as its producer publishes it, "
                    "'<service>.<entity>.<happened>.v<N>'.",
                )
            )
            continue
        handler = _resolve(target, path, issues)
        if handler is not None:
            handlers[event_type] = handler
    bindings: dict[str, list[str]] = {}
    for event_type in sorted(handlers):
        bindings.setdefault(event_type.split(".", 1)[0], []).append(event_type)
    if config is not None:
        issues.extend(_peer_issues(bindings, config))
    table = HandlerTable(
        MappingProxyType(handlers),
        MappingProxyType({key: tuple(value) for key, value in bindings.items()}),
    )
    return table, issues


def _resolve(target: Any, path: str, issues: list[Issue]) -> EventHandler | None:
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            issues.append(
                Issue(
                    "django_microkit.E091",
                    f"{path} cannot be imported: {exc}",
                    "Give the dotted path of an EventHandler subclass or of a "
                    "function (event, data).",
                )
            )
            return None
    if isinstance(target, type) and issubclass(target, EventHandler):
        serializer: object = target.serializer_class
        if serializer is not None and not (
            isinstance(serializer, type) and issubclass(serializer, BaseSerializer)
        ):
            issues.append(
                Issue(
                    "django_microkit.E093",
                    f"{path}.serializer_class is {serializer!r}, not a DRF "
                    "serializer class.",
                    "Set serializer_class to a rest_framework Serializer "
                    "subclass, or to None to take the data as it is.",
                )
            )
            return None
        return target()
    if isinstance(target, EventHandler):
        return target
    if callable(target) and not isinstance(target, type):
        return FunctionHandler(target)
    issues.append(
        Issue(
            "django_microkit.E092",
            f"{path} is {target!r}, neither an EventHandler nor a function.",
            "Subclass django_microkit.events.handlers.EventHandler, or give a "
            "function taking (event, data).",
        )
    )
    return None


def _peer_issues(
    bindings: Mapping[str, list[str]], config: ServiceAuthConfig
) -> list[Issue]:
    with_keys = {key.service for key in config.peer_keys.values()}
    issues = []
    for producer, types in bindings.items():
        if producer not in with_keys:
            issues.append(
                Issue(
                    "django_microkit.E094",
                    f"{_WHERE}['HANDLERS'] handles {', '.join(types)} from "
                    f"{producer!r}, which is not a peer with keys in "
                    "MICROKIT['SERVICE_AUTH']['PEERS']: every such event would "
                    "be refused as from an unknown producer.",
                    f"Add {producer!r} with its public key(s) to "
                    "SERVICE_AUTH['PEERS'], or remove these handlers.",
                )
            )
    return issues


@derived
def get_handlers() -> HandlerTable:
    """The handler table of the settings; ``ImproperlyConfigured`` for an entry
    the checks report (a misspelt type or path), when the worker starts."""
    table, issues = build_handlers(microkit_settings.EVENTS["HANDLERS"])
    if issues:
        raise ImproperlyConfigured(f"{issues[0].msg} {issues[0].hint}")
    return table
