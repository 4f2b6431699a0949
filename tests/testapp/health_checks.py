"""Checks the health tests configure by dotted path or registered name."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter
from typing import Any

from health_check import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django_microkit.health import register_check

P = "tests.testapp.health_checks"

#: How many times each counted check ran.
RUNS: Counter[str] = Counter()
#: Where the last run of ``where_am_i`` / ``async_where_am_i`` happened.
SEEN: dict[str, Any] = {}
_lock = threading.Lock()


def ok() -> None:
    pass


async def async_ok() -> None:
    await asyncio.sleep(0)


def sleep(seconds: float = 1.0) -> None:
    time.sleep(seconds)


async def async_sleep(seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)


def counted(key: str = "counted", seconds: float = 0.0) -> None:
    with _lock:
        RUNS[key] += 1
    time.sleep(seconds)


async def async_counted(key: str = "async_counted") -> None:
    RUNS[key] += 1
    await asyncio.sleep(0.05)


def unavailable() -> None:
    raise ServiceUnavailable("connection to secret-host.internal:5432 refused")


async def async_unavailable() -> None:
    raise ServiceUnavailable("connection to secret-host.internal:6379 refused")


def degraded() -> None:
    raise ServiceWarning("disk 91% full on secret-host.internal")


def crashes() -> None:
    raise ValueError("password=hunter2")


def fails_once() -> None:
    """Fails on its first run after RUNS is cleared, passes from then on."""
    RUNS["fails_once"] += 1
    if RUNS["fails_once"] == 1:
        raise ServiceUnavailable("not yet")


def returns_false() -> bool:
    return False


def returns_coroutine() -> Any:
    return async_ok()


def where_am_i() -> None:
    SEEN["sync"] = threading.current_thread().name


async def async_where_am_i() -> None:
    SEEN["async"] = threading.current_thread().name


@dataclasses.dataclass
class Pinger(HealthCheck):  # type: ignore[misc]  # health_check ships no types
    """A django-health-check style check, configured through ``options``."""

    alias: str = "primary"
    fail: bool = False

    def run(self) -> None:
        if self.fail:
            raise ServiceUnavailable(f"{self.alias} is down")


@dataclasses.dataclass
class AsyncPinger(HealthCheck):  # type: ignore[misc]  # health_check ships no types
    async def run(self) -> None:
        await asyncio.sleep(0)


PINGER = Pinger(alias="secondary")


class Callable:
    """An object that is a check by being awaitable when called."""

    async def __call__(self) -> None:
        await asyncio.sleep(0)


CALLABLE = Callable()
NOT_A_CHECK = 42


@register_check("registered", probes=())
def registered() -> None:
    RUNS["registered"] += 1


@register_check("registered-soft", probes=(), critical=False, timeout=0.2)
async def registered_soft() -> None:
    await asyncio.sleep(1)


@register_check(probes=("startup",), component_type="system")
class Migrations(HealthCheck):  # type: ignore[misc]  # health_check ships no types
    """Registered by class, for the startup probe."""

    def run(self) -> None:
        RUNS["migrations"] += 1


async def slow_to_cancel(seconds: float = 1.5) -> None:
    """Hangs, and takes ``seconds`` to wind down once cancelled."""
    try:
        await asyncio.sleep(60)
    finally:
        await asyncio.sleep(seconds)


_INTERRUPTIONS: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "CancelledError": asyncio.CancelledError,
}


def interrupts(kind: str = "SystemExit") -> None:
    """Raises a BaseException that is not an Exception, counting its runs."""
    RUNS[kind] += 1
    raise _INTERRUPTIONS[kind]()


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")


def unprintable() -> None:
    """Raises an error that cannot be turned into text."""
    raise _Unprintable
