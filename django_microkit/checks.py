"""System checks: misconfiguration is reported by ``manage.py check`` at start-up,
each with a stable ID and a hint saying what to change.

Each concern's ``check_<concern>`` functions live beside it; this module lists
them (:data:`_CONCERN_CHECKS`), registers them, and holds what they share.

IDs are never reused. The list with explanations is in ``docs/checks.md``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from django_microkit.conf import DEFAULTS, REST_FRAMEWORK_WIRING, Option

__all__ = [
    "Issue",
    "check_rest_framework",
    "check_settings",
    "did_you_mean",
    "is_int",
    "is_number",
    "is_subclass_of",
    "is_subclass_path",
    "register_checks",
    "rest_framework_value",
]


@dataclass(frozen=True)
class Issue:
    """A mistake in the settings found while deriving a value from them.

    The same finding serves twice: as the system check ``id`` at start-up
    (:meth:`message`), and as the ``ImproperlyConfigured`` a service that
    ignored the check meets at first use.
    """

    id: str
    msg: str
    hint: str

    @property
    def is_error(self) -> bool:
        return ".E" in self.id

    def message(self) -> CheckMessage:
        """This issue as a system-check message of its level."""
        return (Error if self.is_error else Warning)(
            self.msg, hint=self.hint, id=self.id
        )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'X'?`` for the closest candidate, or ``""``."""
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def is_subclass_path(actual: Any, expected_path: str) -> bool:
    if actual == expected_path:
        return True
    if isinstance(actual, str):
        try:
            actual = import_string(actual)
        except ImportError:
            return False
    expected = import_string(expected_path)
    if actual is expected:
        return True
    return (
        isinstance(actual, type)
        and isinstance(expected, type)
        and issubclass(actual, expected)
    )


def rest_framework_value(key: str) -> Any:
    configured = getattr(settings, "REST_FRAMEWORK", {})
    return configured.get(key) if isinstance(configured, Mapping) else None


def is_subclass_of(value: Any, base_path: str) -> bool:
    return value is not None and is_subclass_path(value, base_path)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_options(
    values: Mapping[Any, Any], spec: Mapping[str, Any], where: str
) -> list[CheckMessage]:
    """Unknown keys and wrong types in ``values`` against ``spec``."""
    messages: list[CheckMessage] = []
    for key, value in values.items():
        path = f"{where}[{key!r}]"
        if key not in spec:
            messages.append(
                Error(
                    f"{path} is not a django-microkit setting.",
                    hint="Remove it or correct the spelling."
                    + did_you_mean(str(key), spec),
                    id="django_microkit.E002",
                )
            )
            continue
        option = spec[key]
        if isinstance(option, Option):
            if not option.accepts(value):
                messages.append(_wrong_type(path, option.describe(), value))
        elif not isinstance(value, Mapping):
            messages.append(_wrong_type(path, "dict", value))
        else:
            messages.extend(_check_options(value, option, path))
    return messages


def _wrong_type(path: str, expected: str, value: Any) -> Error:
    return Error(
        f"{path} must be {expected}, not {type(value).__name__}.",
        hint=f"Set {path} to a value of type {expected}.",
        id="django_microkit.E003",
    )


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    """``MICROKIT`` is a dict of known keys with values of the right types."""
    # Here, not at start-up: the module holds Django's startproject command.
    from django_microkit.startservice import is_service_name

    value = getattr(settings, "MICROKIT", {})
    if not isinstance(value, Mapping):
        return [
            Error(
                f"settings.MICROKIT must be a dict, not {type(value).__name__}.",
                hint='Define MICROKIT = {"SERVICE_NAME": "..."} in your settings.',
                id="django_microkit.E001",
            )
        ]
    messages = _check_options(value, DEFAULTS, "MICROKIT")
    name = value.get("SERVICE_NAME")
    if name and isinstance(name, str) and not is_service_name(name):
        messages.append(
            Error(
                f"MICROKIT['SERVICE_NAME'] is {name!r}, which is not a valid "
                "service name.",
                hint="Use a lowercase Python identifier such as 'orders' or "
                "'order_history': the name goes into service tokens, log lines "
                "and metrics, and is the package startservice creates.",
                id="django_microkit.E006",
            )
        )
    if not name:
        messages.append(
            Warning(
                "MICROKIT['SERVICE_NAME'] is not set.",
                hint="Name the service (for example 'orders'): it appears in logs, "
                "service tokens, the User-Agent of outgoing calls and service info.",
                id="django_microkit.W001",
            )
        )
    return messages


def check_rest_framework(**kwargs: Any) -> list[CheckMessage]:
    """DRF is installed and wired to django-microkit."""
    if "rest_framework" not in settings.INSTALLED_APPS:
        return [
            Error(
                "'rest_framework' is not in INSTALLED_APPS.",
                hint="django-microkit builds on Django REST framework: add "
                "'rest_framework' to INSTALLED_APPS.",
                id="django_microkit.E004",
            )
        ]
    messages: list[CheckMessage] = []
    for key, expected_path in REST_FRAMEWORK_WIRING.items():
        actual = rest_framework_value(key)
        if not is_subclass_path(actual, expected_path):
            messages.append(
                Error(
                    f"REST_FRAMEWORK[{key!r}] is {actual!r}, not {expected_path!r} "
                    "(or a subclass of it).",
                    hint="Merge django-microkit's values into your settings: "
                    "REST_FRAMEWORK = {**django_microkit.rest_framework_defaults(), "
                    "...}.",
                    id="django_microkit.E005",
                )
            )
    parsers = rest_framework_value("DEFAULT_PARSER_CLASSES")
    if isinstance(parsers, list | tuple):
        messages.extend(_check_json_parser(parsers))
    return messages


def _check_json_parser(parsers: list[Any] | tuple[Any, ...]) -> list[CheckMessage]:
    """W002: django-microkit's JSON parser must come before any of DRF's, since
    DRF parses a request with the first parser that accepts its media type."""
    ours = [is_subclass_path(p, "django_microkit.parsers.JSONParser") for p in parsers]
    drf = [
        not hardened and is_subclass_path(parser, "rest_framework.parsers.JSONParser")
        for parser, hardened in zip(parsers, ours, strict=True)
    ]
    if True not in drf or (True in ours and ours.index(True) < drf.index(True)):
        return []
    if True not in ours:
        msg = (
            "REST_FRAMEWORK['DEFAULT_PARSER_CLASSES'] has DRF's JSONParser "
            "but not django-microkit's."
        )
        hint = "Use 'django_microkit.parsers.JSONParser' in its place: DRF's "
    else:
        first = _dotted(parsers[drf.index(True)])
        hardened = _dotted(parsers[ours.index(True)])
        msg = (
            f"REST_FRAMEWORK['DEFAULT_PARSER_CLASSES'] lists DRF's {first!r} "
            f"before django-microkit's {hardened!r}, so DRF's parses JSON."
        )
        hint = f"Move {hardened!r} before {first!r}: DRF's "
    hint += (
        "answers 500 to JSON nested too deeply to decode, "
        "django-microkit's a 400 problem document."
    )
    return [Warning(msg, hint=hint, id="django_microkit.W002")]


def _dotted(parser: Any) -> str:
    """A parser setting's entry as its dotted path, whether path or class."""
    if isinstance(parser, type):
        return f"{parser.__module__}.{parser.__qualname__}"
    return str(parser)


_COMPATIBILITY, _SECURITY, _CACHES = Tags.compatibility, Tags.security, Tags.caches

#: Every check: the dotted path of a ``check_*`` function returning its
#: messages, its tag, and whether it runs only under ``check --deploy``.
_CONCERN_CHECKS: tuple[tuple[str, str, bool], ...] = (
    ("django_microkit.checks.check_settings", _COMPATIBILITY, False),
    ("django_microkit.checks.check_rest_framework", _COMPATIBILITY, False),
    ("django_microkit.errors.checks.check_errors", _COMPATIBILITY, False),
    ("django_microkit.pagination.checks.check_pagination", _COMPATIBILITY, False),
    ("django_microkit.versioning.checks.check_versioning", _COMPATIBILITY, False),
    ("django_microkit.request_id.check_request_id", _COMPATIBILITY, False),
    ("django_microkit.logging.check_logging", _COMPATIBILITY, False),
    ("django_microkit.logging.check_logging_deploy", _COMPATIBILITY, True),
    ("django_microkit.sentry.check_sentry", _COMPATIBILITY, False),
    ("django_microkit.service_info.check_service_info", _COMPATIBILITY, False),
    ("django_microkit.health.checks.check_health", _COMPATIBILITY, False),
    ("django_microkit.health.checks.check_health_deploy", _SECURITY, True),
    ("django_microkit.service_auth.checks.check_service_auth", _SECURITY, False),
    ("django_microkit.service_auth.checks.check_service_auth_deploy", _SECURITY, True),
    ("django_microkit.client.checks.check_client", _COMPATIBILITY, False),
    ("django_microkit.idempotency.checks.check_idempotency", _CACHES, False),
    ("django_microkit.idempotency.checks.check_idempotency_deploy", _CACHES, True),
    ("django_microkit.events.checks.check_publishing", _COMPATIBILITY, False),
    ("django_microkit.events.checks.check_publishing_deploy", _COMPATIBILITY, True),
    ("django_microkit.events.checks.check_consuming", _COMPATIBILITY, False),
)


def register_checks() -> None:
    """Register :data:`_CONCERN_CHECKS` (from ``MicrokitConfig.ready()``); a second
    call adds nothing: Django keeps checks in a set, and a path has one wrapper."""
    for path, tag, deploy in _CONCERN_CHECKS:
        register(_lazy_check(path), tag, deploy=deploy)


@functools.cache
def _lazy_check(path: str) -> Callable[..., list[CheckMessage]]:
    """A check named after ``path`` that imports it only when it runs (not at
    start-up: DRF, PyJWT, cryptography...). Checks read settings only, so
    Django's ``app_configs`` and ``databases`` are not passed on."""

    def check(**kwargs: Any) -> list[CheckMessage]:
        return list(import_string(path)())

    check.__module__, _, check.__name__ = path.rpartition(".")
    check.__qualname__ = check.__name__
    return check
