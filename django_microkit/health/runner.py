"""Running a probe: its checks concurrently, each within its timeout, one round
shared by the probes that arrive while it runs and reused for a short time.

A probe is served in the server's own mode. Under WSGI (:func:`run_probe`) the
request thread hands sync checks to a thread pool and async checks to an event
loop, both created once for the process, and waits at most each check's
timeout: no event loop is created per request. Under ASGI (:func:`arun_probe`)
async checks are awaited on the server's loop with :func:`asyncio.wait_for`
and sync checks go to the same pool.

A check that overruns its timeout is reported ``fail`` with output
``timeout``. Python cannot stop a thread, so a hung sync check keeps its pool
thread; later rounds wait on that same run instead of starting another, and a
hung dependency ties up one thread, not one per probe. The pool's threads are
daemons: they never delay the exit of a worker or of ``manage.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import datetime
import functools
import inspect
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, TypedDict, TypeVar

from django.core.signals import setting_changed
from django.db import close_old_connections
from django.dispatch import receiver
from health_check.exceptions import HealthCheckException, ServiceWarning

from django_microkit.conf import microkit_settings
from django_microkit.health.registry import PROBES, _Check, probe_checks

__all__ = [
    "CheckEntry",
    "CheckResult",
    "HealthDocument",
    "HealthReport",
    "Status",
    "arun_probe",
    "run_probe",
]

logger = logging.getLogger("django_microkit.health")

Status = Literal["pass", "warn", "fail"]

_T = TypeVar("_T")

# Threads are started only when no idle one is left, so this is a ceiling, not
# a cost: a service rarely has more than a handful of sync checks.
_POOL_SIZE = 32


# --- the documents -----------------------------------------------------------


class CheckEntry(TypedDict, total=False):
    """One check in a health document (draft-inadarei-api-health-check)."""

    status: Status
    componentType: str
    observedValue: float
    observedUnit: str
    time: str
    output: str


class _HealthDocumentRequired(TypedDict):
    status: Status
    checks: dict[str, list[CheckEntry]]


class HealthDocument(_HealthDocumentRequired, total=False):
    """The ``application/health+json`` body of a probe."""

    serviceId: str


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What one check reported in one round."""

    name: str
    status: Status
    #: How long the check ran, in milliseconds.
    duration: float
    component_type: str
    critical: bool
    #: A short public word for a non-passing check: ``timeout``, ``unavailable``…
    output: str | None = None
    #: The error text: shown only when details are enabled, it may name hosts.
    detail: str | None = None


@dataclasses.dataclass(frozen=True)
class HealthReport:
    """The result of one round of a probe's checks."""

    probe: str
    status: Status
    #: When the round started (ISO 8601, UTC).
    time: str
    checks: tuple[CheckResult, ...]
    _bodies: dict[bool, bytes] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def http_status(self) -> int:
        """503 when a critical check failed, else 200 (``warn`` included)."""
        return 503 if self.status == "fail" else 200

    def as_document(self, *, details: bool = False) -> HealthDocument:
        """The health document; ``details`` adds the error texts to ``output``."""
        checks: dict[str, list[CheckEntry]] = {}
        for result in self.checks:
            entry: CheckEntry = {
                "status": result.status,
                "componentType": result.component_type,
                "observedValue": round(result.duration, 3),
                "observedUnit": "ms",
                "time": self.time,
            }
            output = result.detail if details and result.detail else result.output
            if output:
                entry["output"] = output
            checks.setdefault(result.name, []).append(entry)
        service = microkit_settings.SERVICE_NAME
        if service:
            return {"status": self.status, "serviceId": service, "checks": checks}
        return {"status": self.status, "checks": checks}

    def render(self, *, details: bool = False) -> bytes:
        """The document as JSON, built once per report."""
        try:
            return self._bodies[details]
        except KeyError:
            body = json.dumps(
                self.as_document(details=details), separators=(",", ":")
            ).encode()
            self._bodies[details] = body
            return body


# --- running one check ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Outcome:
    status: Status
    seconds: float
    output: str | None = None
    detail: str | None = None


def _passed(value: Any, seconds: float) -> _Outcome:
    if value is False:
        return _Outcome("fail", seconds, "failed", "The check returned False.")
    return _Outcome("pass", seconds)


def _failed(error: BaseException, seconds: float) -> _Outcome:
    if isinstance(error, ServiceWarning):
        return _Outcome("warn", seconds, "warning", str(error.message))
    if isinstance(error, HealthCheckException):
        return _Outcome("fail", seconds, "unavailable", str(error.message))
    return _Outcome("fail", seconds, "error", f"{type(error).__name__}: {error}")


def _timed_out(check: _Check) -> _Outcome:
    return _Outcome("fail", check.timeout, "timeout")


def _close_old_connections() -> None:
    """Close this pool thread's unusable or expired database connections.

    A pool thread is like a request that never ends: without this, a check
    using the ORM would keep a broken connection (and fail) after the database
    restarts.
    """
    try:
        close_old_connections()
    except Exception:
        # Only tidying: the check's own outcome must not depend on it.
        logger.debug("Could not close old database connections.", exc_info=True)


def _run_sync_check(check: _Check) -> _Outcome:
    _close_old_connections()
    start = time.perf_counter()
    try:
        value = check.call()
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError("the check returned a coroutine; define it `async def`")
    except Exception as error:
        return _failed(error, time.perf_counter() - start)
    finally:
        _close_old_connections()
    return _passed(value, time.perf_counter() - start)


async def _run_async_check(check: _Check) -> _Outcome:
    start = time.perf_counter()
    try:
        value = await check.call()
    except Exception as error:
        return _failed(error, time.perf_counter() - start)
    return _passed(value, time.perf_counter() - start)


# --- the process-lifetime pool and loop ------------------------------------------


class _DaemonPool:
    """A thread pool whose threads live for the process and never hold up its
    exit (a hung check must not stop a worker from shutting down)."""

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._queue: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any], Callable[[], Any]]
        ] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, call: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._queue.put((future, call))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._max_workers:
                    self._threads += 1
                    threading.Thread(
                        target=self._work,
                        name=f"microkit-health-{self._threads}",
                        daemon=True,
                    ).start()
        return future

    def _work(self) -> None:
        while True:
            future, call = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as error:  # pragma: no cover - calls never raise
                    future.set_exception(error)
            del future, call
            self._idle.release()


class _BackgroundLoop:
    """An event loop in a daemon thread: async checks under a sync server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(
            target=self.loop.run_forever, name="microkit-health-loop", daemon=True
        ).start()

    def submit(
        self, coroutine: Coroutine[Any, Any, _T]
    ) -> concurrent.futures.Future[_T]:
        # A fresh context: the check must not share the request thread's
        # per-thread objects (Django connections and caches are kept in
        # context variables).
        return contextvars.Context().run(
            asyncio.run_coroutine_threadsafe, coroutine, self.loop
        )


_pool: _DaemonPool | None = None
_loop: _BackgroundLoop | None = None
_start_lock = threading.Lock()


def _get_pool() -> _DaemonPool:
    global _pool
    with _start_lock:
        if _pool is None:
            _pool = _DaemonPool(_POOL_SIZE)
        return _pool


def _get_loop() -> _BackgroundLoop:
    global _loop
    with _start_lock:
        if _loop is None:
            _loop = _BackgroundLoop()
        return _loop


def _start_sync(check: _Check) -> concurrent.futures.Future[_Outcome]:
    """Run a sync check in the pool, or join its run still under way."""
    running = check.running
    if running is None or running.done():
        running = check.running = _get_pool().submit(
            functools.partial(_run_sync_check, check)
        )
    return running


# --- one round -------------------------------------------------------------------


def _round_sync(checks: Sequence[_Check]) -> list[_Outcome]:
    start = time.perf_counter()
    futures = [
        _get_loop().submit(_run_async_check(check))
        if check.is_async
        else _start_sync(check)
        for check in checks
    ]
    outcomes: list[_Outcome] = [_timed_out(check) for check in checks]
    # Collect in timeout order: every wait ends at its own check's deadline,
    # so the round lasts as long as its slowest check, not their sum.
    for index in sorted(range(len(checks)), key=lambda i: checks[i].timeout):
        check, future = checks[index], futures[index]
        remaining = start + check.timeout - time.perf_counter()
        try:
            outcomes[index] = future.result(timeout=max(remaining, 0.0))
        except concurrent.futures.TimeoutError:
            if check.is_async:
                future.cancel()
    return outcomes


async def _round_async(checks: Sequence[_Check]) -> list[_Outcome]:
    return list(await asyncio.gather(*(_check_async(check) for check in checks)))


async def _check_async(check: _Check) -> _Outcome:
    # Sync checks go to the same pool as under WSGI (what run_in_executor does,
    # keeping the future so that a hung run is joined, not repeated).
    awaitable = _run_async_check(check) if check.is_async else _wait(_start_sync(check))
    try:
        return await asyncio.wait_for(awaitable, check.timeout)
    except asyncio.TimeoutError:
        return _timed_out(check)


def _wait(future: concurrent.futures.Future[_T]) -> asyncio.Future[_T]:
    """An asyncio future for ``future`` that can be cancelled on its own.

    Unlike :func:`asyncio.wrap_future`, cancelling it never cancels ``future``
    (other rounds may wait on it), and a loop closed in the meantime is not an
    error.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[_T] = loop.create_future()

    def settle(_: concurrent.futures.Future[_T]) -> None:
        if waiter.done():  # cancelled: its check timed out
            return
        error = future.exception()
        if error is None:
            waiter.set_result(future.result())
        else:
            waiter.set_exception(error)

    def done(_: concurrent.futures.Future[_T]) -> None:
        # A loop closed in the meantime has nobody left waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, future)

    future.add_done_callback(done)
    return waiter


def _report(
    probe: str, checks: Sequence[_Check], outcomes: Sequence[_Outcome], started: str
) -> HealthReport:
    results = []
    for check, outcome in zip(checks, outcomes, strict=True):
        status = outcome.status
        if status == "fail" and not check.critical:
            status = "warn"
        results.append(
            CheckResult(
                name=check.name,
                status=status,
                duration=outcome.seconds * 1000,
                component_type=check.component_type,
                critical=check.critical,
                output=outcome.output,
                detail=outcome.detail,
            )
        )
    statuses = {result.status for result in results}
    overall: Status = (
        "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    )
    return HealthReport(probe, overall, started, tuple(results))


def _now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- rounds shared and reused ------------------------------------------------------


class _ProbeState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (report, monotonic expiry): one attribute, read without the lock.
        self.cached: tuple[HealthReport, float] | None = None
        self.last: HealthReport | None = None
        self.round: concurrent.futures.Future[HealthReport] | None = None

    def fresh(self) -> HealthReport | None:
        cached = self.cached
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        return None

    def join_or_lead(self) -> tuple[concurrent.futures.Future[HealthReport], bool]:
        with self.lock:
            if self.round is not None:
                return self.round, False
            self.round = concurrent.futures.Future()
            return self.round, True

    def finish(
        self,
        round_: concurrent.futures.Future[HealthReport],
        result: HealthReport | BaseException,
    ) -> None:
        """Publish a round's report (or the error that ended it) to its waiters."""
        if not isinstance(result, HealthReport):
            with self.lock:
                self.round = None
            if not isinstance(result, Exception):
                result = RuntimeError("The round of health checks was interrupted.")
            round_.set_exception(result)
            return
        # A probe without checks has nothing that could change: keep its report.
        ttl = microkit_settings.HEALTH["RESULT_TTL"] if result.checks else math.inf
        with self.lock:
            previous, self.last = self.last, result
            self.cached = (result, time.monotonic() + ttl) if ttl > 0 else None
            self.round = None
        _log_changes(previous, result)
        round_.set_result(result)


_states: dict[str, _ProbeState] = {probe: _ProbeState() for probe in PROBES}
_tasks: set[asyncio.Task[None]] = set()


def _state(probe: str) -> _ProbeState:
    try:
        return _states[probe]
    except KeyError:
        raise ValueError(f"Unknown probe {probe!r}; the probes are {PROBES}.") from None


def run_probe(probe: str, *, fresh: bool = False) -> HealthReport:
    """Run ``probe``'s checks (``"live"``, ``"ready"`` or ``"startup"``).

    A report younger than ``MICROKIT["HEALTH"]["RESULT_TTL"]`` is returned as is
    unless ``fresh``; a caller arriving while a round runs waits for that round.
    """
    state = _state(probe)
    if not fresh:
        report = state.fresh()
        if report is not None:
            return report
    round_, leader = state.join_or_lead()
    if not leader:
        return round_.result()
    try:
        started = _now()
        checks = probe_checks(probe)
        report = _report(probe, checks, _round_sync(checks), started)
    except BaseException as error:
        state.finish(round_, error)
        raise
    state.finish(round_, report)
    return report


async def arun_probe(probe: str, *, fresh: bool = False) -> HealthReport:
    """:func:`run_probe` for async code: checks run on the running event loop."""
    state = _state(probe)
    if not fresh:
        report = state.fresh()
        if report is not None:
            return report
    round_, leader = state.join_or_lead()
    if leader:
        # The round is a task of its own: a probe whose client goes away does
        # not cancel the round others wait for.
        task = asyncio.get_running_loop().create_task(_lead(probe, state, round_))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    return await _wait(round_)


async def _lead(
    probe: str,
    state: _ProbeState,
    round_: concurrent.futures.Future[HealthReport],
) -> None:
    try:
        started = _now()
        checks = probe_checks(probe)
        report = _report(probe, checks, await _round_async(checks), started)
    except BaseException as error:
        state.finish(round_, error)
        if not isinstance(error, Exception):
            raise
    else:
        state.finish(round_, report)


def _log_changes(previous: HealthReport | None, report: HealthReport) -> None:
    """Log a check when its status changes, not on every probe."""
    before = (
        {result.name: result.status for result in previous.checks} if previous else {}
    )
    for result in report.checks:
        if before.get(result.name, "pass") == result.status:
            continue
        if result.status == "pass":
            logger.info("Health check %s passes again.", result.name)
        else:
            logger.warning(
                "Health check %s: %s (%s).",
                result.name,
                result.status,
                result.detail or result.output,
            )


def forget_results() -> None:
    """Drop cached reports: the next probe runs its checks."""
    for state in _states.values():
        with state.lock:
            state.cached = None
            state.last = None


@receiver(setting_changed)
def _forget_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in {"MICROKIT", "DATABASES", "CACHES", "STORAGES"}:
        forget_results()


def _after_fork() -> None:  # pragma: no cover - runs in the child, see the fork test
    # Threads do not survive fork(): a forked worker starts its own pool and
    # loop, and forgets rounds its parent had under way.
    global _pool, _loop, _start_lock, _states
    _pool = _loop = None
    _start_lock = threading.Lock()
    _states = {probe: _ProbeState() for probe in PROBES}


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork)
