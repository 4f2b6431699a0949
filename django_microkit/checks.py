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

from django_microkit.conf import (
    _REST_FRAMEWORK_WIRING,
    DEFAULTS,
    Option,
    microkit_settings,
)
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


# Idempotency keys ---------------------------------------------------------

_IDEMPOTENCY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_STORE_CACHES = ("django.core.cache.backends.dummy.DummyCache",)
_PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


def _cache_backend_is(backend: Any, paths: Iterable[str]) -> bool:
    return any(_is_subclass_path(backend, path) for path in paths)


@register(Tags.caches)
def check_idempotency(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """The idempotency cache exists and stores; TTL, lease and methods make sense."""
    section = microkit_settings.IDEMPOTENCY
    where = "MICROKIT['IDEMPOTENCY']"
    messages: list[CheckMessage] = []
    alias = section["CACHE"]
    caches_setting = getattr(settings, "CACHES", {})
    if isinstance(alias, str) and alias not in caches_setting:
        messages.append(
            Error(
                f"{where}['CACHE'] is {alias!r}, which is not in settings.CACHES.",
                hint="Name a configured cache alias (a shared one such as Redis)."
                + _did_you_mean(alias, caches_setting),
                id="django_microkit.E070",
            )
        )
    elif isinstance(alias, str):
        backend = caches_setting[alias].get("BACKEND")
        if _cache_backend_is(backend, _NO_STORE_CACHES):
            messages.append(
                Error(
                    f"The idempotency cache {alias!r} is a DummyCache: it stores "
                    "nothing, so idempotency keys would protect nothing.",
                    hint=f"Point {where}['CACHE'] at a cache that stores, such "
                    "as Redis.",
                    id="django_microkit.E074",
                )
            )
    ttl, lease = section["TTL"], section["LOCK_TIMEOUT"]
    for key, value, error_id in (
        ("TTL", ttl, "django_microkit.E071"),
        ("LOCK_TIMEOUT", lease, "django_microkit.E072"),
    ):
        if _is_number(value) and value <= 0:
            messages.append(
                Error(
                    f"{where}[{key!r}] is {value}; it must be a positive number "
                    "of seconds.",
                    hint=f"Set {where}[{key!r}] above 0.",
                    id=error_id,
                )
            )
    if _is_number(ttl) and _is_number(lease) and 0 < ttl < lease:
        messages.append(
            Warning(
                f"{where}['TTL'] ({ttl} s) is shorter than its "
                f"['LOCK_TIMEOUT'] ({lease} s).",
                hint="Keep responses at least as long as a request may run.",
                id="django_microkit.W071",
            )
        )
    methods = section["METHODS"]
    if isinstance(methods, (list, tuple)):
        wrong = [m for m in methods if m not in _IDEMPOTENCY_METHODS]
        if wrong:
            messages.append(
                Error(
                    f"{where}['METHODS'] contains {wrong!r}.",
                    hint="List unsafe methods in upper case, from: "
                    + ", ".join(sorted(_IDEMPOTENCY_METHODS))
                    + ". Safe methods need no key.",
                    id="django_microkit.E073",
                )
            )
    return messages


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@register(Tags.caches, deploy=True)
def check_idempotency_deploy(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """In production the idempotency cache is shared by every worker."""
    alias = microkit_settings.IDEMPOTENCY["CACHE"]
    config = (
        getattr(settings, "CACHES", {}).get(alias) if isinstance(alias, str) else None
    )
    if config is None or not _cache_backend_is(
        config.get("BACKEND"), _PER_PROCESS_CACHES
    ):
        return []
    return [
        Warning(
            f"The idempotency cache {alias!r} is not shared between processes "
            f"({config.get('BACKEND')}): two workers can both run a request "
            "retried with the same key.",
            hint="Use a shared cache such as Redis "
            "(django.core.cache.backends.redis.RedisCache).",
            id="django_microkit.W070",
        )
    ]
