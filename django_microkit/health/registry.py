"""Which checks each probe runs.

A probe's checks come from ``MICROKIT["HEALTH"]`` (built-in names such as
``"database"`` or ``"cache:sessions"``, dotted paths, names of registered checks)
and from :func:`register_check`. The configuration is turned into a tuple of
ready-to-run checks once, when a probe first needs it, and again only after the
settings or the registry change: nothing is imported or parsed per request.

The built-in checks are django-health-check's own classes; this module only
instantiates them.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_microkit.conf import microkit_settings

__all__ = ["PROBES", "register_check"]

#: The probes, by the name used in URLs, the command and :func:`register_check`.
PROBES: tuple[str, ...] = ("live", "ready", "startup")

_PROBE_SETTINGS: dict[str, str] = {
    "live": "LIVENESS_CHECKS",
    "ready": "READINESS_CHECKS",
    "startup": "STARTUP_CHECKS",
}

_T = TypeVar("_T")


@dataclasses.dataclass(eq=False)
class _Check:
    """One check of one probe, ready to run."""

    name: str
    component_type: str
    critical: bool
    timeout: float
    call: Callable[[], Any]
    is_async: bool
    # A sync check's last run; a new round joins it while it is still running,
    # so a hung dependency holds one pool thread, not one per round.
    running: Future[Any] | None = dataclasses.field(default=None, repr=False)


class _ConfigError(Exception):
    def __init__(self, check_id: str, msg: str, hint: str) -> None:
        super().__init__(msg)
        self.check_id = check_id
        self.msg = msg
        self.hint = hint


@dataclasses.dataclass(frozen=True)
class _Registration:
    target: Any
    probes: tuple[str, ...]
    critical: bool
    timeout: float | None
    component_type: str


_registry: dict[str, _Registration] = {}
_resolved: dict[str, tuple[_Check, ...]] = {}
_lock = threading.RLock()


# --- built-in checks: django-health-check's classes -------------------------


def _database_aliases() -> list[str]:
    from django.db import connections

    return list(connections)


def _cache_aliases() -> list[str]:
    from django.core.cache import caches

    return list(caches)


def _storage_aliases() -> list[str]:
    from django.core.files.storage import storages

    return list(storages.backends)


def _redis(url: str, **options: Any) -> Any:
    """django-health-check's Redis check against the server at ``url``."""
    from health_check.contrib.redis import Redis
    from redis.asyncio import Redis as RedisClient

    return Redis(client_factory=functools.partial(RedisClient.from_url, url, **options))


@dataclasses.dataclass(frozen=True)
class _Builtin:
    factory: str
    component_type: str
    aliases: Callable[[], list[str]] | None = None


_BUILTINS: dict[str, _Builtin] = {
    "database": _Builtin(
        "health_check.checks.Database", "datastore", _database_aliases
    ),
    "cache": _Builtin("health_check.checks.Cache", "datastore", _cache_aliases),
    "storage": _Builtin("health_check.checks.Storage", "datastore", _storage_aliases),
    "mail": _Builtin("health_check.checks.Mail", "component"),
    "dns": _Builtin("health_check.checks.DNS", "system"),
    "redis": _Builtin("django_microkit.health.registry._redis", "datastore"),
}


# --- registration -----------------------------------------------------------


@overload
def register_check(name: _T, /) -> _T: ...


@overload
def register_check(
    name: str | None = None,
    /,
    *,
    probes: Iterable[str] = ...,
    critical: bool = ...,
    timeout: float | None = ...,
    component_type: str = ...,
) -> Callable[[_T], _T]: ...


def register_check(
    name: Any = None,
    /,
    *,
    probes: Iterable[str] = ("ready",),
    critical: bool = True,
    timeout: float | None = None,
    component_type: str = "component",
) -> Any:
    """Register a service's own check, by decorating it.

    The check is a function (sync or ``async``) that raises to fail, or a class
    with a ``run`` method (a django-health-check ``HealthCheck`` subclass, for
    example) instantiated without arguments. Raising django-health-check's
    ``ServiceWarning`` reports ``warn``; returning ``False`` reports ``fail``.

    ``probes`` are the probes that run it (``"live"``, ``"ready"``,
    ``"startup"``; ``()`` to only name it in settings); a check that is not
    ``critical`` turns a failure into ``warn``; ``timeout`` (seconds) overrides
    ``MICROKIT["HEALTH"]["TIMEOUT"]``::

        @register_check("payments-api", critical=False, timeout=1)
        def payments_api() -> None:
            requests.get(PAYMENTS_URL + "/health/live", timeout=1).raise_for_status()
    """
    if name is not None and not isinstance(name, str):
        return register_check()(name)
    probes = tuple(probes)
    unknown = [probe for probe in probes if probe not in PROBES]
    if unknown:
        raise ValueError(f"Unknown probe {unknown[0]!r}; the probes are {PROBES}.")

    def decorator(target: _T) -> _T:
        key = name or _name_of(target)
        if key in _BUILTINS:
            raise ValueError(f"{key!r} is the name of a built-in check.")
        _registry[key] = _Registration(
            target, probes, critical, timeout, component_type
        )
        forget_checks()
        return target

    return decorator


def _name_of(target: Any) -> str:
    return str(getattr(target, "__name__", type(target).__name__))


# --- resolution ---------------------------------------------------------------


def probe_checks(probe: str) -> tuple[_Check, ...]:
    """The checks ``probe`` runs, resolved once per configuration."""
    with _lock:
        checks = _resolved.get(probe)
        if checks is None:
            try:
                checks = _resolved[probe] = _resolve_probe(probe)
            except _ConfigError as error:
                raise ImproperlyConfigured(f"{error.msg} {error.hint}") from error
        return checks


def forget_checks() -> None:
    """Resolve the probes' checks again on next use."""
    with _lock:
        _resolved.clear()


@receiver(setting_changed)
def _forget_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in {"MICROKIT", "DATABASES", "CACHES", "STORAGES"}:
        forget_checks()


def _after_fork() -> None:  # pragma: no cover - runs in the child, see the fork test
    # A forked worker must not wait on runs of its parent's threads, nor on a
    # lock another thread of the parent held.
    global _lock
    _lock = threading.RLock()
    _resolved.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork)


def _resolve_probe(probe: str) -> tuple[_Check, ...]:
    section: Mapping[str, Any] = microkit_settings.HEALTH
    default_timeout = float(section["TIMEOUT"])
    checks: list[_Check] = []
    for entry in section[_PROBE_SETTINGS[probe]]:
        checks.extend(_resolve_entry(entry, default_timeout))
    listed = {check.name for check in checks}
    for name, registration in _registry.items():
        if probe in registration.probes and name not in listed:
            checks.extend(_resolve_entry({"check": name}, default_timeout))
    return tuple(checks)


def _resolve_entry(entry: Any, default_timeout: float) -> list[_Check]:
    spec = _entry_spec(entry)
    reference: str = spec["check"]
    options: Mapping[str, Any] = spec.get("options", {})
    timeout = float(spec.get("timeout", default_timeout))
    critical: bool = spec.get("critical", True)
    kind, _, argument = reference.partition(":")
    registration = _registry.get(reference)
    if registration is not None:
        call, _ = _callable(registration.target, options, reference)
        targets = [(reference, call)]
        component_type = registration.component_type
        critical = spec.get("critical", registration.critical)
        if "timeout" not in spec and registration.timeout is not None:
            timeout = float(registration.timeout)
    elif kind in _BUILTINS:
        builtin = _BUILTINS[kind]
        targets = _builtin_targets(kind, builtin, argument, options)
        component_type = builtin.component_type
    else:
        call, name = _callable(_import(reference), options, reference)
        targets = [(name, call)]
        component_type = "component"
    return [
        _Check(
            name=spec.get("name", name),
            component_type=component_type,
            critical=critical,
            timeout=timeout,
            call=call,
            is_async=iscoroutinefunction(call),
        )
        for name, call in targets
    ]


_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "check": (str,),
    "name": (str,),
    "options": (Mapping,),
    "critical": (bool,),
    "timeout": (int, float),
}


def _entry_spec(entry: Any) -> Mapping[str, Any]:
    if isinstance(entry, str):
        return {"check": entry}
    if not isinstance(entry, Mapping):
        raise _ConfigError(
            "django_microkit.E040",
            f"Health check entry {entry!r} is neither a string nor a dict.",
            'Give a check name ("database"), a dotted path, or a dict such as '
            '{"check": "cache", "critical": False}.',
        )
    problems = [f"unknown key {key!r}" for key in entry if key not in _ENTRY_TYPES]
    if "check" not in entry:
        problems.append("'check' is missing")
    for key, types in _ENTRY_TYPES.items():
        if key in entry and not _is_a(entry[key], types):
            names = " or ".join(t.__name__ for t in types)
            problems.append(f"{key!r} must be {names}")
    if problems:
        raise _ConfigError(
            "django_microkit.E040",
            f"Health check entry {dict(entry)!r} is malformed: {'; '.join(problems)}.",
            f"Use the keys {list(_ENTRY_TYPES)}; only 'check' is required.",
        )
    if "timeout" in entry and entry["timeout"] <= 0:
        raise _ConfigError(
            "django_microkit.E043",
            f"Health check {entry['check']!r} has timeout {entry['timeout']!r}.",
            "A timeout is a number of seconds greater than 0.",
        )
    return entry


def _is_a(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int subclass: True is not a timeout.
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _builtin_targets(
    kind: str, builtin: _Builtin, argument: str, options: Mapping[str, Any]
) -> list[tuple[str, Callable[[], Any]]]:
    factory = import_string(builtin.factory)
    if builtin.aliases is None:
        if argument:
            raise _ConfigError(
                "django_microkit.E041",
                f"Health check '{kind}:{argument}' is unknown: {kind!r} takes no "
                "alias.",
                f"Write {kind!r}, with its arguments in 'options'.",
            )
        return [(kind, _callable(_create(factory, options, kind), {}, kind)[0])]
    known = builtin.aliases()
    if argument and argument not in known:
        raise _ConfigError(
            "django_microkit.E045",
            f"Health check '{kind}:{argument}' names an alias that is not configured.",
            f"Configured aliases: {known}." + _did_you_mean(argument, known),
        )
    return [
        (
            f"{kind}:{alias}",
            _callable(_create(factory, {**options, "alias": alias}, kind), {}, kind)[0],
        )
        for alias in ([argument] if argument else known)
    ]


def _import(reference: str) -> Any:
    try:
        return import_string(reference)
    except ImportError as error:
        candidates = [*_BUILTINS, *_registry]
        raise _ConfigError(
            "django_microkit.E041",
            f"Health check {reference!r} is unknown: not a built-in check, not a "
            f"registered check and not an importable dotted path ({error}).",
            f"Built-in checks: {list(_BUILTINS)}; registered checks: "
            f"{sorted(_registry)}." + _did_you_mean(reference, candidates),
        ) from error


def _create(factory: Callable[..., Any], options: Mapping[str, Any], ref: str) -> Any:
    try:
        return factory(**options)
    except (TypeError, ValueError, ImportError) as error:
        raise _ConfigError(
            "django_microkit.E042",
            f"Health check {ref!r} cannot be created with options "
            f"{dict(options)!r}: {error}",
            "Pass the arguments it expects in 'options'.",
        ) from error


def _callable(
    target: Any, options: Mapping[str, Any], reference: str
) -> tuple[Callable[[], Any], str]:
    """What to call to run ``target`` (a bound ``run`` or the callable itself),
    and the name the check has when none is given."""
    if isinstance(target, type):
        target = _create(target, options, reference)
        options = {}
    run = getattr(target, "run", None)
    if callable(run):
        call: Callable[..., Any] = run
        name = type(target).__name__.lower()
        alias = getattr(target, "alias", None)
        if isinstance(alias, str):
            name = f"{name}:{alias}"
    elif callable(target):
        # An object with ``async def __call__`` is awaited like a coroutine function.
        call = target if hasattr(target, "__name__") else target.__call__
        name = _name_of(target)
    else:
        raise _ConfigError(
            "django_microkit.E042",
            f"Health check {reference!r} is {type(target).__name__}, not a check.",
            "Point it at a function, a class with a run() method or an instance "
            "of one.",
        )
    if options:
        call = _with_options(call, options)
    return call, name


def _with_options(call: Callable[..., Any], options: Mapping[str, Any]) -> Any:
    if iscoroutinefunction(call):

        async def call_with_options() -> Any:
            return await call(**options)

        return call_with_options
    return functools.partial(call, **options)


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


# --- system checks (registered from django_microkit.checks) ------------------

_DEPENDENCY_KINDS = frozenset({"database", "cache", "redis"})


def _checks() -> list[CheckMessage]:
    section: Mapping[str, Any] = microkit_settings.HEALTH
    messages: list[CheckMessage] = []
    timeout = section["TIMEOUT"]
    if _is_a(timeout, (int, float)) and timeout <= 0:
        messages.append(
            Error(
                f"MICROKIT['HEALTH']['TIMEOUT'] is {timeout!r}.",
                hint="A timeout is a number of seconds greater than 0 (default 2).",
                id="django_microkit.E043",
            )
        )
    ttl = section["RESULT_TTL"]
    if _is_a(ttl, (int, float)) and ttl < 0:
        messages.append(
            Error(
                f"MICROKIT['HEALTH']['RESULT_TTL'] is {ttl!r}.",
                hint="Give the seconds a round of checks is reused, 0 to run the "
                "checks on every probe.",
                id="django_microkit.E044",
            )
        )
    prefix = section["URL_PREFIX"]
    if isinstance(prefix, str) and (
        prefix.startswith("/") or (prefix and not prefix.endswith("/"))
    ):
        messages.append(
            Error(
                f"MICROKIT['HEALTH']['URL_PREFIX'] is {prefix!r}.",
                hint="Write it as Django routes are written: no leading slash, a "
                "trailing one ('health/'), or '' for /live, /ready, /startup.",
                id="django_microkit.E046",
            )
        )
    for probe, key in _PROBE_SETTINGS.items():
        entries = section[key]
        if isinstance(entries, (list, tuple)):
            messages.extend(_probe_messages(probe, key, entries))
    return messages


def _deploy_checks() -> list[CheckMessage]:
    if microkit_settings.HEALTH["SHOW_DETAILS"] is True:
        return [
            Warning(
                "MICROKIT['HEALTH']['SHOW_DETAILS'] is True: probe responses carry "
                "error texts, which may name hosts, users and databases.",
                hint="Leave it unset in production; operators find the error in the "
                "logs, or with `manage.py microkit_health --details`.",
                id="django_microkit.W042",
            )
        ]
    return []


def _probe_messages(probe: str, key: str, entries: Iterable[Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    names: list[str] = []
    for entry in entries:
        try:
            checks = _resolve_entry(entry, 1.0)
        except _ConfigError as error:
            messages.append(
                Error(
                    f"MICROKIT['HEALTH'][{key!r}]: {error.msg}",
                    hint=error.hint,
                    id=error.check_id,
                )
            )
            continue
        names.extend(check.name for check in checks)
        reference = entry if isinstance(entry, str) else entry["check"]
        if probe == "live" and reference.partition(":")[0] in _DEPENDENCY_KINDS:
            messages.append(
                Warning(
                    f"MICROKIT['HEALTH']['LIVENESS_CHECKS'] checks {reference!r}.",
                    hint="When a dependency fails, a liveness failure restarts every "
                    "instance and cures nothing: check dependencies in "
                    "READINESS_CHECKS.",
                    id="django_microkit.W041",
                )
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        messages.append(
            Warning(
                f"MICROKIT['HEALTH'][{key!r}] runs {duplicates} more than once.",
                hint="Remove the repeated entry, or give each a distinct 'name'.",
                id="django_microkit.W040",
            )
        )
    return messages
