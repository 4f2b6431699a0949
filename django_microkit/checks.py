"""System checks: misconfiguration is reported by ``manage.py check`` at start-up,
each with a stable ID and a hint saying what to change.

IDs are never reused. The list with explanations is in ``docs/checks.md``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from django_microkit.conf import _REST_FRAMEWORK_WIRING, DEFAULTS, Option
from django_microkit.errors._checks import check_errors

__all__: list[str] = []


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


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
                    + _did_you_mean(str(key), spec),
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


@register(Tags.compatibility)
def check_settings(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """``MICROKIT`` is a dict of known keys with values of the right types."""
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
    if not value.get("SERVICE_NAME"):
        messages.append(
            Warning(
                "MICROKIT['SERVICE_NAME'] is not set.",
                hint="Name the service (for example 'orders'): it appears in logs, "
                "service tokens, the User-Agent of outgoing calls and service info.",
                id="django_microkit.W001",
            )
        )
    return messages


@register(Tags.compatibility)
def check_rest_framework(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
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
    configured = getattr(settings, "REST_FRAMEWORK", {})
    messages: list[CheckMessage] = []
    for key, expected_path in _REST_FRAMEWORK_WIRING.items():
        actual = configured.get(key) if isinstance(configured, Mapping) else None
        if not _is_subclass_path(actual, expected_path):
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
    return messages


def _is_subclass_path(actual: Any, expected_path: str) -> bool:
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


@register(Tags.compatibility)
def check_request_id(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """RequestIDMiddleware comes first and its settings are usable."""
    from django_microkit import logging, request_id, sentry

    return [*request_id._checks(), *logging._checks(), *sentry._checks()]


register(check_errors, Tags.compatibility)


@register(Tags.compatibility)
def check_health(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """The probes' checks exist and can be created; timeouts and paths make sense."""
    from django_microkit import service_info
    from django_microkit.health import registry

    return [*registry._checks(), *service_info._checks()]


@register(Tags.security, deploy=True)
def check_health_deploy(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Probe responses do not show error details in production."""
    from django_microkit.health import registry

    return registry._deploy_checks()
