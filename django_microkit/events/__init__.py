"""Events between services: a transactional outbox, a relay to the broker
through kombu, and a worker whose handlers have no second effect.

Add ``"django_microkit.events"`` to ``INSTALLED_APPS`` and run ``migrate``.
The names a service uses are re-exported here, lazily (PEP 562): Django
imports this package when it loads the app, before the settings are ready,
and that must not import what the names need. See docs/events.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names of _LAZY, for type checkers
    from django_microkit.events.envelope import Event as Event
    from django_microkit.events.envelope import EventRejected as EventRejected

# Each re-exported name -> the module defining it (where docs/api.md lists it).
_LAZY: dict[str, str] = {
    "Event": "django_microkit.events.envelope",
    "EventRejected": "django_microkit.events.envelope",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
