"""System checks of ``MICROKIT["IDEMPOTENCY"]`` (E070–E074, W070–W071).

A key protects a request only if every worker sees the same claims: the checks
refuse a cache that stores nothing and warn, for production, about one that each
process keeps to itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage

from django_microkit.checks import Issue, did_you_mean, is_number, is_subclass_path
from django_microkit.conf import microkit_settings

__all__ = ["check_idempotency", "check_idempotency_deploy"]

_WHERE = "MICROKIT['IDEMPOTENCY']"
_IDEMPOTENCY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_STORE_CACHES = ("django.core.cache.backends.dummy.DummyCache",)
_PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


def _backend_is(backend: Any, paths: Iterable[str]) -> bool:
    return any(is_subclass_path(backend, path) for path in paths)


def check_idempotency(**kwargs: Any) -> list[CheckMessage]:
    """The idempotency cache exists and stores; TTL, lease and methods make sense."""
    section = microkit_settings.IDEMPOTENCY
    issues: list[Issue] = []
    alias = section["CACHE"]
    caches_setting = getattr(settings, "CACHES", {})
    if isinstance(alias, str) and alias not in caches_setting:
        issues.append(
            Issue(
                "django_microkit.E070",
                f"{_WHERE}['CACHE'] is {alias!r}, which is not in settings.CACHES.",
                "Name a configured cache alias (a shared one such as Redis)."
                + did_you_mean(alias, caches_setting),
            )
        )
    elif isinstance(alias, str) and _backend_is(
        caches_setting[alias].get("BACKEND"), _NO_STORE_CACHES
    ):
        issues.append(
            Issue(
                "django_microkit.E074",
                f"The idempotency cache {alias!r} is a DummyCache: it stores "
                "nothing, so idempotency keys would protect nothing.",
                f"Point {_WHERE}['CACHE'] at a cache that stores, such as Redis.",
            )
        )
    ttl, lease = section["TTL"], section["LOCK_TIMEOUT"]
    for key, value, error_id in (
        ("TTL", ttl, "django_microkit.E071"),
        ("LOCK_TIMEOUT", lease, "django_microkit.E072"),
    ):
        if is_number(value) and value <= 0:
            issues.append(
                Issue(
                    error_id,
                    f"{_WHERE}[{key!r}] is {value}; it must be a positive number "
                    "of seconds.",
                    f"Set {_WHERE}[{key!r}] above 0.",
                )
            )
    if is_number(ttl) and is_number(lease) and 0 < ttl < lease:
        issues.append(
            Issue(
                "django_microkit.W071",
                f"{_WHERE}['TTL'] ({ttl} s) is shorter than its "
                f"['LOCK_TIMEOUT'] ({lease} s).",
                "Keep responses at least as long as a request may run.",
            )
        )
    methods = section["METHODS"]
    if isinstance(methods, (list, tuple)):  # another type is E003's
        wrong = [m for m in methods if m not in _IDEMPOTENCY_METHODS]
        if wrong:
            issues.append(
                Issue(
                    "django_microkit.E073",
                    f"{_WHERE}['METHODS'] contains {wrong!r}.",
                    "List unsafe methods in upper case, from: "
                    + ", ".join(sorted(_IDEMPOTENCY_METHODS))
                    + ". Safe methods need no key.",
                )
            )
    return [issue.message() for issue in issues]


def check_idempotency_deploy(**kwargs: Any) -> list[CheckMessage]:
    """In production the idempotency cache is shared by every worker."""
    alias = microkit_settings.IDEMPOTENCY["CACHE"]
    config = (
        getattr(settings, "CACHES", {}).get(alias) if isinstance(alias, str) else None
    )
    if config is None or not _backend_is(config.get("BACKEND"), _PER_PROCESS_CACHES):
        return []
    warning = Issue(
        "django_microkit.W070",
        f"The idempotency cache {alias!r} is not shared between processes "
        f"({config.get('BACKEND')}): two workers can both run a request "
        "retried with the same key.",
        "Use a shared cache such as Redis "
        "(django.core.cache.backends.redis.RedisCache).",
    )
    return [warning.message()]
