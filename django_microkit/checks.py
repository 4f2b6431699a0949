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


register(check_errors, Tags.compatibility)


def _rest_framework_value(key: str) -> Any:
    configured = getattr(settings, "REST_FRAMEWORK", {})
    return configured.get(key) if isinstance(configured, Mapping) else None


def _is_subclass_of(value: Any, base_path: str) -> bool:
    return value is not None and _is_subclass_path(value, base_path)


@register(Tags.compatibility)
def check_pagination(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """``MICROKIT["PAGINATION"]`` is coherent and DRF pages with it."""
    from django_microkit.conf import microkit_settings
    from django_microkit.pagination.offset import _COUNT_MODES

    config = microkit_settings.PAGINATION
    where = "MICROKIT['PAGINATION']"
    messages: list[CheckMessage] = []
    page_size, max_page_size = config["PAGE_SIZE"], config["MAX_PAGE_SIZE"]
    sizes_valid = True
    for key in ("PAGE_SIZE", "MAX_PAGE_SIZE"):
        if _is_int(config[key]) and config[key] < 1:
            sizes_valid = False
            messages.append(
                Error(
                    f"{where}[{key!r}] is {config[key]}; a page holds at least one "
                    "item.",
                    hint=f"Set {where}[{key!r}] to 1 or more.",
                    id="django_microkit.E030",
                )
            )
    if (
        sizes_valid
        and _is_int(page_size)
        and _is_int(max_page_size)
        and max_page_size < page_size
    ):
        messages.append(
            Error(
                f"{where}['MAX_PAGE_SIZE'] ({max_page_size}) is smaller than "
                f"{where}['PAGE_SIZE'] ({page_size}).",
                hint="The default page size must be a size clients may ask for: "
                "raise MAX_PAGE_SIZE or lower PAGE_SIZE.",
                id="django_microkit.E031",
            )
        )
    count = config["COUNT"]
    if isinstance(count, str) and count not in _COUNT_MODES:
        messages.append(
            Error(
                f"{where}['COUNT'] is {count!r}, not one of "
                + ", ".join(repr(mode) for mode in _COUNT_MODES)
                + ".",
                hint="'exact' counts every page, 'none' never counts, 'prefer' "
                "counts when the client sends 'Prefer: count=exact'."
                + _did_you_mean(count, _COUNT_MODES),
                id="django_microkit.E032",
            )
        )
    for key, minimum in (("COUNT_LIMIT", 1), ("MAX_OFFSET", 0)):
        value = config[key]
        if _is_int(value) and value < minimum:
            messages.append(
                Error(
                    f"{where}[{key!r}] is {value}; it must be at least {minimum} "
                    "(or None for no limit).",
                    hint=f"Set {where}[{key!r}] to None or a number of rows.",
                    id="django_microkit.E033",
                )
            )
    paginator = _rest_framework_value("DEFAULT_PAGINATION_CLASS")
    if not _is_subclass_of(paginator, "django_microkit.pagination.base._Pagination"):
        messages.append(
            Warning(
                f"REST_FRAMEWORK['DEFAULT_PAGINATION_CLASS'] is {paginator!r}, not a "
                "django-microkit paginator: list endpoints will not answer with the "
                "shared envelope.",
                hint="Use django_microkit.pagination.PageNumberPagination, "
                "LimitOffsetPagination or CursorPagination (rest_framework_defaults() "
                "sets the first).",
                id="django_microkit.W030",
            )
        )
    if _rest_framework_value("PAGE_SIZE") is not None:
        messages.append(
            Warning(
                "REST_FRAMEWORK['PAGE_SIZE'] is set but django-microkit paginators "
                "take their page size from MICROKIT['PAGINATION'].",
                hint="Move the value to MICROKIT['PAGINATION']['PAGE_SIZE'] and "
                "remove it from REST_FRAMEWORK.",
                id="django_microkit.W031",
            )
        )
    return messages


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_DEPRECATION_KEYS = ("deprecated_since", "sunset", "link")


@register(Tags.compatibility)
def check_versioning(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """``MICROKIT["VERSIONING"]`` is coherent and DRF negotiates with it."""
    from django_microkit.conf import microkit_settings
    from django_microkit.versioning.config import _VERSION_PATTERN

    config = microkit_settings.VERSIONING
    where = "MICROKIT['VERSIONING']"
    messages: list[CheckMessage] = []
    versions = config["VERSIONS"]
    known: list[str] = []
    if isinstance(versions, (list, tuple)):
        known = [v for v in versions if isinstance(v, str)]
        bad = [
            v
            for v in versions
            if not (isinstance(v, str) and _VERSION_PATTERN.fullmatch(v))
        ]
        duplicates = sorted({v for v in known if known.count(v) > 1})
        if not versions or bad or duplicates:
            problem = (
                "is empty"
                if not versions
                else f"has invalid versions {bad!r}"
                if bad
                else f"repeats {duplicates!r}"
            )
            messages.append(
                Error(
                    f"{where}['VERSIONS'] {problem}.",
                    hint="List each version once, as a string of letters, digits, "
                    "'.', '_' or '-' (at most 32 characters), for example "
                    "['1', '2'].",
                    id="django_microkit.E034",
                )
            )
        default = config["DEFAULT_VERSION"]
        if isinstance(default, str) and default not in known:
            messages.append(
                Error(
                    f"{where}['DEFAULT_VERSION'] {default!r} is not in "
                    f"{where}['VERSIONS'] {list(versions)!r}.",
                    hint="Requests that name no version get DEFAULT_VERSION: make it "
                    "one of VERSIONS." + _did_you_mean(default, known),
                    id="django_microkit.E035",
                )
            )
    deprecated = config["DEPRECATED"]
    if isinstance(deprecated, Mapping):
        for version, entry in deprecated.items():
            messages.extend(_check_deprecation(where, version, entry, known))
    messages.extend(_check_version_wiring())
    return messages


def _check_deprecation(
    where: str, version: Any, entry: Any, known: list[str]
) -> list[CheckMessage]:
    from django_microkit.conf import microkit_settings
    from django_microkit.versioning.config import _parse_instant, _table, _valid_link

    path = f"{where}['DEPRECATED'][{version!r}]"
    messages: list[CheckMessage] = []
    if version not in known:
        messages.append(
            Error(
                f"{path}: version {version!r} is not in {where}['VERSIONS'].",
                hint="Only a version the service serves can be deprecated."
                + _did_you_mean(str(version), known),
                id="django_microkit.E036",
            )
        )
    if not isinstance(entry, Mapping):
        return [
            *messages,
            _bad_deprecation(
                f"{path} must be a dict, not {type(entry).__name__}.",
                "deprecated_since",
            ),
        ]
    for key in entry:
        if key not in _DEPRECATION_KEYS:
            messages.append(
                _bad_deprecation(
                    f"{path} has an unknown key {key!r}.",
                    "deprecated_since",
                    _did_you_mean(str(key), _DEPRECATION_KEYS),
                )
            )
    dates: dict[str, Any] = {}
    for key in ("deprecated_since", "sunset"):
        if key not in entry or (key == "sunset" and entry[key] is None):
            if key == "deprecated_since":
                messages.append(
                    _bad_deprecation(
                        f"{path} has no 'deprecated_since' date.",
                        "deprecated_since",
                    )
                )
            continue
        try:
            dates[key] = _parse_instant(entry[key])
        except (TypeError, ValueError):
            messages.append(
                _bad_deprecation(
                    f"{path}[{key!r}] is {entry[key]!r}, not an ISO 8601 date.",
                    key,
                )
            )
    link = entry.get("link")
    if link is not None and not (isinstance(link, str) and _valid_link(link)):
        messages.append(
            _bad_deprecation(
                f"{path}['link'] is {link!r}, not an absolute http(s) URL.", "link"
            )
        )
    if (
        "sunset" in dates
        and "deprecated_since" in dates
        and dates["sunset"] < dates["deprecated_since"]
    ):
        messages.append(
            Warning(
                f"{path}: the sunset date is before the deprecation date.",
                hint="RFC 9745 asks that a version be deprecated before it is "
                "retired: move 'sunset' after 'deprecated_since'.",
                id="django_microkit.W032",
            )
        )
    default = microkit_settings.VERSIONING["DEFAULT_VERSION"]
    if version == default and "sunset" in dates and _table().sunset_passed(version):
        messages.append(
            Warning(
                f"{where}['DEFAULT_VERSION'] {default!r} is past its sunset date: "
                "every request that names no version is answered 410.",
                hint="Make a current version the default, or move the sunset date.",
                id="django_microkit.W033",
            )
        )
    return messages


def _bad_deprecation(msg: str, key: str, extra: str = "") -> Error:
    examples = {
        "deprecated_since": "'deprecated_since': '2025-01-31'",
        "sunset": "'sunset': '2026-06-30' (or None)",
        "link": "'link': 'https://developer.example.com/v1-retirement' (or None)",
    }
    return Error(
        msg,
        hint="Each deprecated version maps to a dict of 'deprecated_since' (an ISO "
        f"8601 date), 'sunset' and 'link', for example {{{examples[key]}}}." + extra,
        id="django_microkit.E037",
    )


def _check_version_wiring() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    scheme = _rest_framework_value("DEFAULT_VERSIONING_CLASS")
    if not _is_subclass_of(scheme, "django_microkit.versioning.schemes._Negotiation"):
        messages.append(
            Warning(
                f"REST_FRAMEWORK['DEFAULT_VERSIONING_CLASS'] is {scheme!r}, not a "
                "django-microkit versioning scheme: responses will not say which "
                "API version served them.",
                hint="Use django_microkit.versioning.NegotiatedVersioning (set by "
                "rest_framework_defaults()), AcceptHeaderVersioning, "
                "HeaderVersioning or URLPathVersioning.",
                id="django_microkit.W036",
            )
        )
    elif "django_microkit.versioning.VersionHeadersMiddleware" not in list(
        getattr(settings, "MIDDLEWARE", None) or []
    ):
        messages.append(
            Warning(
                "django_microkit.versioning.VersionHeadersMiddleware is not in "
                "MIDDLEWARE: responses will lack X-API-Version and the deprecation "
                "headers.",
                hint="Add 'django_microkit.versioning.VersionHeadersMiddleware' to "
                "MIDDLEWARE.",
                id="django_microkit.W034",
            )
        )
    ignored = [
        key
        for key in ("DEFAULT_VERSION", "ALLOWED_VERSIONS", "VERSION_PARAM")
        if _rest_framework_value(key) is not None
    ]
    if ignored:
        messages.append(
            Warning(
                f"REST_FRAMEWORK {ignored!r} is set but django-microkit versioning "
                "reads its versions from MICROKIT['VERSIONING'].",
                hint="Move the versions to MICROKIT['VERSIONING'] ('VERSIONS', "
                "'DEFAULT_VERSION') and remove these keys from REST_FRAMEWORK.",
                id="django_microkit.W035",
            )
        )
    return messages


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


@register(Tags.security)
def check_service_auth(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Service-auth keys load, fit their algorithms, and replay protection holds."""
    from django_microkit.service_auth._keys import check_messages

    return check_messages(deploy=False)


@register(Tags.security, deploy=True)
def check_service_auth_deploy(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Production-only: the replay cache is shared between processes."""
    from django_microkit.service_auth._keys import check_messages

    return check_messages(deploy=True)


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


@register(Tags.compatibility)
def check_services(
    *,
    app_configs: Sequence[AppConfig] | None,
    databases: Sequence[str] | None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """``MICROKIT["SERVICES"]`` and ``MICROKIT["CLIENT"]`` describe callable
    services: base URLs, timeouts, retry and breaker values, header providers."""
    from django_microkit.client.config import settings_issues

    return [
        (Error if issue.level == "error" else Warning)(
            issue.msg, hint=issue.hint, id=issue.id
        )
        for issue in settings_issues()
    ]
