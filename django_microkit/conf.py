"""The one place where django-microkit reads its settings.

A service configures everything through one ``MICROKIT = {...}`` dict in its
Django settings. :data:`microkit_settings` merges it with :data:`DEFAULTS` the
first time a value is asked for, keeps the result, and forgets it when Django
sends ``setting_changed`` for ``MICROKIT`` (so ``override_settings`` works).
Nothing is read at import time and nothing is rebuilt per request.

Values are not validated here: :mod:`django_microkit.checks` reports bad values
at start-up with a system-check ID and a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "DEFAULTS",
    "MicrokitSettings",
    "Option",
    "microkit_settings",
    "rest_framework_defaults",
]


@dataclass(frozen=True)
class Option:
    """One setting: its default and the types a service may give it."""

    default: Any
    types: tuple[type, ...]

    def accepts(self, value: Any) -> bool:
        # bool is an int subclass; an int option must not accept True.
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)

    def describe(self) -> str:
        return " or ".join(
            "None" if t is type(None) else t.__name__ for t in self.types
        )


_STR = (str,)
_OPTIONAL_STR = (str, type(None))
_BOOL = (bool,)
_LIST = (list, tuple)
_NUMBER = (int, float)

#: Every ``MICROKIT`` key with its default. A value is either an :class:`Option`
#: or a section: a dict of options that a service may set one by one.
DEFAULTS: dict[str, Option | dict[str, Option]] = {
    # Names this service in logs, tokens, the User-Agent and service info.
    "SERVICE_NAME": Option("", _STR),
    # The deployed version of the service (not of django-microkit).
    "SERVICE_VERSION": Option("", _STR),
    # Request IDs and W3C trace context (django_microkit.request_id).
    "REQUEST_ID": {
        # The header carrying the request ID, in and out.
        "HEADER": Option("X-Request-ID", _STR),
        # A received ID is kept only if it matches this pattern in full.
        "PATTERN": Option(r"[A-Za-z0-9._:-]{1,128}", _STR),
        # Whose IDs to keep: "any", "proxies" (REMOTE_ADDR in TRUSTED_PROXIES),
        # "none", or the dotted path of a callable(request) -> bool.
        "TRUST": Option("any", _STR),
        # Networks (CIDR) whose requests are trusted under TRUST = "proxies".
        "TRUSTED_PROXIES": Option((), _LIST),
    },
    # The one access-log line per request (django_microkit.logging).
    "ACCESS_LOG": {
        "ENABLED": Option(True, _BOOL),
        # Paths starting with one of these prefixes are logged at DEBUG.
        "HEALTH_PATHS": Option(("/health/",), _LIST),
        # Log the query string (it may carry personal data).
        "QUERY_STRING": Option(False, _BOOL),
        # Log REMOTE_ADDR as client_address.
        "CLIENT_ADDRESS": Option(False, _BOOL),
    },
    # Error reporting to Sentry (django_microkit.sentry).
    "SENTRY": {
        # No DSN: Sentry stays off.
        "DSN": Option("", _STR),
        "ENVIRONMENT": Option("", _STR),
        # Empty: SERVICE_VERSION.
        "RELEASE": Option("", _STR),
        "SAMPLE_RATE": Option(1.0, _NUMBER),
        "TRACES_SAMPLE_RATE": Option(0.0, _NUMBER),
    },
    # Problem-details error responses (django_microkit.errors).
    "ERRORS": {
        # The ExceptionHandler subclass every error goes through.
        "HANDLER_CLASS": Option("django_microkit.errors.ExceptionHandler", _STR),
        # Problem `type` is this + code when set; "about:blank" when empty.
        "TYPE_BASE_URI": Option("", _STR),
        # Clients preferring text/html get Django's HTML error pages.
        "HTML_FALLBACK": Option(False, _BOOL),
    },
    # Health probes: which checks each probe runs, their time budget, caching.
    "HEALTH": {
        "LIVENESS_CHECKS": Option((), _LIST),
        "READINESS_CHECKS": Option(("database", "cache"), _LIST),
        "STARTUP_CHECKS": Option((), _LIST),
        "TIMEOUT": Option(2.0, _NUMBER),
        "RESULT_TTL": Option(1.0, _NUMBER),
        "SHOW_DETAILS": Option(None, (bool, type(None))),
        "URL_PREFIX": Option("health/", _STR),
        "INCLUDE_IN_SCHEMA": Option(False, _BOOL),
    },
    # What /.well-known/service-info says about the deployed service.
    "SERVICE_INFO": {
        "PATH": Option(".well-known/service-info", _STR),
        "BUILD": Option(None, _OPTIONAL_STR),
        "COMMIT": Option(None, _OPTIONAL_STR),
        "OPENAPI_URL": Option("/api/schema/", _OPTIONAL_STR),
        "SHOW_RUNTIME": Option(True, _BOOL),
        "EXTRA": Option({}, (dict,)),
    },
}


class MicrokitSettings:
    """Merged ``MICROKIT`` settings, looked up lazily and cached.

    ``microkit_settings.SERVICE_NAME`` gives a plain value;
    ``microkit_settings.ERRORS`` gives a read-only mapping of that section with
    the service's values laid over the defaults.
    """

    def __init__(self, defaults: Mapping[str, Option | dict[str, Option]]) -> None:
        self._defaults = defaults
        self._cache: dict[str, Any] = {}

    @staticmethod
    def user_settings() -> Mapping[str, Any]:
        """The raw ``MICROKIT`` dict of the service (empty if absent or malformed)."""
        value = getattr(settings, "MICROKIT", {})
        return value if isinstance(value, Mapping) else {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown MICROKIT setting: {name!r}")
        try:
            return self._cache[name]
        except KeyError:
            value = self._resolve(name)
            self._cache[name] = value
            return value

    def _resolve(self, name: str) -> Any:
        spec = self._defaults[name]
        user_value = self.user_settings().get(name, _MISSING)
        if isinstance(spec, Option):
            return spec.default if user_value is _MISSING else user_value
        merged = {key: option.default for key, option in spec.items()}
        if isinstance(user_value, Mapping):
            merged.update(user_value)
        return MappingProxyType(merged)

    def reload(self) -> None:
        """Forget cached values; the next access reads Django settings again."""
        self._cache.clear()


_MISSING: Any = object()

#: The merged settings object every module of django-microkit reads.
microkit_settings = MicrokitSettings(DEFAULTS)


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "MICROKIT":
        microkit_settings.reload()


#: REST_FRAMEWORK values a service needs for django-microkit to take effect.
#: ``checks`` verifies each is set to this class or a subclass of it.
_REST_FRAMEWORK_WIRING: dict[str, str] = {
    "DEFAULT_SCHEMA_CLASS": "django_microkit.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "django_microkit.errors.exception_handler",
}


def rest_framework_defaults() -> dict[str, Any]:
    """The recommended ``REST_FRAMEWORK`` values, to merge into a service's own.

    ``REST_FRAMEWORK = {**django_microkit.rest_framework_defaults(), ...}``
    wires DRF to django-microkit in one line; keys the service sets after the
    merge win.
    """
    return dict(_REST_FRAMEWORK_WIRING)
