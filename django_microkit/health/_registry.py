"""Which checks each probe runs: ``MICROKIT["HEALTH"]`` and :func:`register_check`
resolved into ready-to-run :class:`Check` objects.

A probe resolves its checks when it first runs, and again only after the
settings or the registry change: nothing is imported or parsed per request. The
system checks resolve every entry the same way, so ``manage.py check`` and a
probe never disagree about what an entry means.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, Literal, NamedTuple, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_microkit.checks import Issue, did_you_mean
from django_microkit.conf import Option, derived, microkit_settings

__all__ = [
    "CHECKS_DEPEND_ON",
    "PROBES",
    "PROBE_SETTINGS",
    "REGISTRY",
    "Check",
    "Misconfigured",
    "probe_checks",
    "register_check",
    "resolve",
]

#: The probes, by the name used in URLs, the command and :func:`register_check`.
PROBES: tuple[str, ...] = ("live", "ready", "startup")

#: Each probe's list of checks in ``MICROKIT["HEALTH"]``.
PROBE_SETTINGS: dict[
    str, Literal["LIVENESS_CHECKS", "READINESS_CHECKS", "STARTUP_CHECKS"]
] = {
    "live": "LIVENESS_CHECKS",
    "ready": "READINESS_CHECKS",
    "startup": "STARTUP_CHECKS",
}

#: What the checks are built from: a change to any of these rebuilds them.
CHECKS_DEPEND_ON = ("MICROKIT", "DATABASES", "CACHES", "STORAGES")

_T = TypeVar("_T")
# A check: a function or a class with ``run`` (both callable), never a name.
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(eq=False)
class Check:
    """One check of one probe, ready to run."""

    name: str
    component_type: str
    critical: bool
    timeout: float
    call: Callable[[], Any]
    is_async: bool
    #: What a sync round (WSGI) calls: ``call`` for a sync check, a sync
    #: equivalent for an async one that has it (the built-in cache check), else
    #: None (the check runs on an event loop).
    sync_call: Callable[[], Any] | None = dataclasses.field(default=None, repr=False)
    # A sync check's last run; a new round joins it while it is still running,
    # so a hung dependency holds one pool thread, not one per round.
    running: Future[Any] | None = dataclasses.field(default=None, repr=False)
    # How many of its last sync runs in a row passed quickly (the runner's
    # measure of whether it may run inline); None once a run inline overran its
    # timeout: it stays in the pool.
    fast_runs: int | None = dataclasses.field(default=0, repr=False)


class Misconfigured(ImproperlyConfigured):
    """A health check entry that cannot be resolved: the system check reports
    its :class:`~django_microkit.checks.Issue`, a probe raises it."""

    def __init__(self, id: str, msg: str, hint: str) -> None:
        super().__init__(f"{msg} {hint}")
        self.issue = Issue(id, msg, hint)


class _Registration(NamedTuple):
    target: Any
    probes: tuple[str, ...]
    critical: bool
    timeout: float | None
    component_type: str


#: The checks registered with :func:`register_check`, by name.
REGISTRY: dict[str, _Registration] = {}


def _redis(url: str, **options: Any) -> Any:
    """django-health-check's Redis check against the server at ``url``."""
    from health_check.contrib.redis import Redis
    from redis.asyncio import Redis as RedisClient

    return Redis(client_factory=functools.partial(RedisClient.from_url, url, **options))


#: Built-in check -> (django-health-check's factory, componentType, whether it
#: takes an alias of DATABASES, CACHES or STORAGES).
_BUILTINS: dict[str, tuple[str, str, bool]] = {
    "database": ("health_check.checks.Database", "datastore", True),
    "cache": ("health_check.checks.Cache", "datastore", True),
    "storage": ("health_check.checks.Storage", "datastore", True),
    "mail": ("health_check.checks.Mail", "component", False),
    "dns": ("health_check.checks.DNS", "system", False),
    "redis": ("django_microkit.health._registry._redis", "datastore", False),
}


@overload
def register_check(name: _F, /) -> _F: ...


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
    """Register a service's own check (a function, sync or ``async``, or a class
    with a ``run`` method), by decorating it: ``@register_check`` or
    ``@register_check("payments-api", critical=False, timeout=1)``.

    It joins ``probes`` without a settings entry, and a settings entry may
    name it (``probes=()``: only there).
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
        REGISTRY[key] = _Registration(target, probes, critical, timeout, component_type)
        _resolved.reset()
        return target

    return decorator


def _name_of(target: Any) -> str:
    return str(getattr(target, "__name__", type(target).__name__))


@derived(settings=CHECKS_DEPEND_ON, fork_safe=True)
def _resolved() -> dict[str, tuple[Check, ...]]:
    """Each probe's checks, filled in as probes first run.

    Fork-safe: a check remembers its run under way, a future of the parent's
    pool that a forked worker must not wait on.
    """
    return {}


def probe_checks(probe: str) -> tuple[Check, ...]:
    """The checks ``probe`` runs, resolved once per configuration. No lock: a
    probe's rounds overlap only across a settings change, when either
    resolution is as good. A failure is raised, and tried again next round."""
    resolved = _resolved()
    if probe not in resolved:
        section = microkit_settings.HEALTH
        timeout = float(section["TIMEOUT"])
        entries = section[PROBE_SETTINGS[probe]]
        checks = [check for entry in entries for check in resolve(entry, timeout)]
        listed = {check.name for check in checks}
        for name, registration in REGISTRY.items():
            if probe in registration.probes and name not in listed:
                checks.extend(resolve(name, timeout))
        resolved[probe] = tuple(checks)
    return resolved[probe]


#: A check's name, its callable, and a sync equivalent of an async callable.
_Target = tuple[str, Callable[[], Any], Callable[[], Any] | None]


def resolve(entry: Any, default_timeout: float) -> list[Check]:
    """The checks one settings entry stands for (several: ``"database"``);
    :class:`Misconfigured` if it stands for none."""
    spec = _entry_spec(entry)
    reference: str = spec["check"]
    options: Mapping[str, Any] = spec.get("options", {})
    timeout = float(spec.get("timeout", default_timeout))
    critical: bool = spec.get("critical", True)
    kind, _, alias = reference.partition(":")
    registration = REGISTRY.get(reference)
    targets: list[_Target]
    if registration is not None:
        targets = [
            (reference, _callable(registration.target, options, reference)[1], None)
        ]
        component_type = registration.component_type
        critical = spec.get("critical", registration.critical)
        if "timeout" not in spec and registration.timeout is not None:
            timeout = float(registration.timeout)
    elif kind in _BUILTINS:
        targets = _builtin_targets(kind, alias, options)
        component_type = _BUILTINS[kind][1]
    else:
        targets = [(*_callable(_import(reference), options, reference), None)]
        component_type = "component"
    checks = []
    for name, call, equivalent in targets:
        is_async = iscoroutinefunction(call)
        sync_call = equivalent if is_async else call
        checks.append(
            Check(
                spec.get("name", name),
                component_type,
                critical,
                timeout,
                call,
                is_async,
                sync_call,
            )
        )
    return checks


#: The keys of a dict entry, with the types of their values.
_ENTRY_KEYS: dict[str, Option] = {
    "check": Option(None, (str,)),
    "name": Option(None, (str,)),
    "options": Option({}, (Mapping,)),
    "critical": Option(True, (bool,)),
    "timeout": Option(None, (int, float)),
}


def _entry_spec(entry: Any) -> Mapping[str, Any]:
    if isinstance(entry, str):
        return {"check": entry}
    if not isinstance(entry, Mapping):
        raise Misconfigured(
            "django_microkit.E040",
            f"Health check entry {entry!r} is neither a string nor a dict.",
            'Give a check name ("database"), a dotted path, or a dict such as '
            '{"check": "cache", "critical": False}.',
        )
    problems = [f"unknown key {key!r}" for key in entry if key not in _ENTRY_KEYS]
    if "check" not in entry:
        problems.append("'check' is missing")
    problems += [
        f"{key!r} must be {option.describe()}"
        for key, option in _ENTRY_KEYS.items()
        if key in entry and not option.accepts(entry[key])
    ]
    if problems:
        raise Misconfigured(
            "django_microkit.E040",
            f"Health check entry {dict(entry)!r} is malformed: {'; '.join(problems)}.",
            f"Use the keys {list(_ENTRY_KEYS)}; only 'check' is required.",
        )
    if "timeout" in entry and entry["timeout"] <= 0:
        raise Misconfigured(
            "django_microkit.E043",
            f"Health check {entry['check']!r} has timeout {entry['timeout']!r}.",
            "A timeout is a number of seconds greater than 0.",
        )
    return entry


def _builtin_targets(
    kind: str, alias: str, options: Mapping[str, Any]
) -> list[_Target]:
    """``kind``'s check, or one per alias of the databases, caches, storages."""
    path, _, takes_alias = _BUILTINS[kind]
    factory = import_string(path)
    if not takes_alias:
        if alias:
            raise Misconfigured(
                "django_microkit.E041",
                f"Health check '{kind}:{alias}' is unknown: {kind!r} takes no alias.",
                f"Write {kind!r}, with its arguments in 'options'.",
            )
        return [(kind, _create(factory, options, kind).run, None)]
    from django.core.cache import caches
    from django.core.files.storage import storages
    from django.db import connections

    handlers: dict[str, Iterable[str]] = {
        "database": connections,
        "cache": caches,
        "storage": storages.backends,
    }
    known = list(handlers[kind])
    if alias and alias not in known:
        raise Misconfigured(
            "django_microkit.E045",
            f"Health check '{kind}:{alias}' names an alias that is not configured.",
            f"Configured aliases: {known}." + did_you_mean(alias, known),
        )
    targets: list[_Target] = []
    for name in [alias] if alias else known:
        check = _create(factory, {**options, "alias": name}, kind)
        equivalent = _sync_cache(check) if kind == "cache" else None
        targets.append((f"{kind}:{name}", check.run, equivalent))
    return targets


def _sync_cache(check: Any) -> Callable[[], None] | None:
    """django-health-check's ``Cache.run`` through the cache's sync methods, for
    a sync round (WSGI), when the backend's ``aset`` and ``aget`` are Django's
    own (every built-in backend's): those only call ``set`` and ``get`` in
    another thread, so this runs the very same operations, without the hand-offs
    to an event loop and to asgiref's thread (six thread switches a round). A
    backend with async methods of its own keeps the async check.

    The steps and the errors they report are ``Cache.run``'s, line for line
    (django-health-check 4.x)."""
    from django.core.cache import CacheKeyWarning, InvalidCacheBackendError, caches
    from django.core.cache.backends.base import BaseCache

    backend = import_string(caches.settings[check.alias]["BACKEND"])
    if (backend.aset, backend.aget) != (BaseCache.aset, BaseCache.aget):
        return None
    from health_check.checks import RedisError
    from health_check.exceptions import (
        ServiceReturnedUnexpectedResult,
        ServiceUnavailable,
    )

    def run() -> None:
        try:
            cache = caches[check.alias]
        except InvalidCacheBackendError as error:
            raise ServiceUnavailable("Cache alias does not exist") from error
        key = f"{check.key_prefix}:{uuid.uuid4().hex}"
        value = f"itworks-{datetime.datetime.now().timestamp()}"
        try:
            cache.set(key, value, timeout=check.timeout.total_seconds())
            if not cache.get(key) == value:
                raise ServiceUnavailable(f"Cache key {key} does not match")
        except CacheKeyWarning as error:
            raise ServiceReturnedUnexpectedResult("Cache key warning") from error
        except ValueError as error:
            raise ServiceReturnedUnexpectedResult("ValueError") from error
        except (ConnectionError, RedisError) as error:
            raise ServiceReturnedUnexpectedResult("Connection Error") from error

    return run


def _import(reference: str) -> Any:
    try:
        return import_string(reference)
    except ImportError as error:
        raise Misconfigured(
            "django_microkit.E041",
            f"Health check {reference!r} is unknown: not a built-in check, not a "
            f"registered check and not an importable dotted path ({error}).",
            f"Built-in checks: {list(_BUILTINS)}; registered checks: "
            f"{sorted(REGISTRY)}." + did_you_mean(reference, [*_BUILTINS, *REGISTRY]),
        ) from error


def _create(factory: Callable[..., Any], options: Mapping[str, Any], ref: str) -> Any:
    try:
        return factory(**options)
    except (TypeError, ValueError, ImportError) as error:
        raise Misconfigured(
            "django_microkit.E042",
            f"Health check {ref!r} cannot be created with options "
            f"{dict(options)!r}: {error}",
            "Pass the arguments it expects in 'options'.",
        ) from error


def _callable(
    target: Any, options: Mapping[str, Any], reference: str
) -> tuple[str, Callable[[], Any]]:
    """The name a check of ``target`` has when none is given, and what to call
    to run it (a bound ``run`` or the callable itself)."""
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
        raise Misconfigured(
            "django_microkit.E042",
            f"Health check {reference!r} is {type(target).__name__}, not a check.",
            "Point it at a function, a class with a run() method or an instance "
            "of one.",
        )
    # A partial of a coroutine function is still one: it is awaited as such.
    return name, functools.partial(call, **options) if options else call
