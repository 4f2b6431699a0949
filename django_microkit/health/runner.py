"""Running a probe: its checks concurrently, each within its timeout, one round
shared by the probes that arrive while it runs and reused for a short time.

A round is a coroutine. Under ASGI (:func:`arun_probe`) it runs on the server's
loop; under WSGI (:func:`run_probe`) on an event loop of the process's own, in
a daemon thread, and the request thread waits for it: no event loop is created
per request. Either way async checks are awaited with
:func:`asyncio.wait_for`, and sync checks go to a pool of daemon threads.

A check that overruns its timeout is reported ``fail`` with output
``timeout``. Python cannot stop a thread, so a hung sync check keeps its pool
thread; later rounds wait on that same run instead of starting another, and a
hung dependency ties up one thread, not one per probe. The threads are
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
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypedDict, TypeVar

from django.db import close_old_connections
from health_check.exceptions import HealthCheckException, ServiceWarning

from django_microkit.conf import derived, microkit_settings
from django_microkit.health.registry import (
    _CHECKS_DEPEND_ON,
    PROBES,
    _Check,
    _probe_checks,
)

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
        if details not in self._bodies:
            document = self.as_document(details=details)
            self._bodies[details] = json.dumps(document, separators=(",", ":")).encode()
        return self._bodies[details]


# --- running one check ---------------------------------------------------------


def _result(
    check: _Check,
    seconds: float,
    status: Status = "pass",
    output: str | None = None,
    detail: str | None = None,
) -> CheckResult:
    if status == "fail" and not check.critical:
        status = "warn"
    return CheckResult(
        check.name,
        status,
        seconds * 1000,
        check.component_type,
        check.critical,
        output,
        detail,
    )


def _ended(
    check: _Check, start: float, value: Any, error: Exception | None
) -> CheckResult:
    """What ``check`` reports, having returned ``value`` or raised ``error``."""
    seconds = time.perf_counter() - start
    if isinstance(error, ServiceWarning):
        return _result(check, seconds, "warn", "warning", str(error.message))
    if isinstance(error, HealthCheckException):
        return _result(check, seconds, "fail", "unavailable", str(error.message))
    if error is not None:
        detail = f"{type(error).__name__}: {error}"
        return _result(check, seconds, "fail", "error", detail)
    if value is False:
        return _result(check, seconds, "fail", "failed", "The check returned False.")
    return _result(check, seconds)


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


def _run_sync(check: _Check) -> CheckResult:
    _close_old_connections()
    start = time.perf_counter()
    try:
        value = check.call()
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError("the check returned a coroutine; define it `async def`")
    except Exception as error:
        return _ended(check, start, None, error)
    finally:
        _close_old_connections()
    return _ended(check, start, value, None)


async def _run_async(check: _Check) -> CheckResult:
    start = time.perf_counter()
    try:
        value = await check.call()
    except Exception as error:
        return _ended(check, start, None, error)
    return _ended(check, start, value, None)


# --- the process's own threads ---------------------------------------------------


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


# The pool and the loop depend on no setting: a settings change keeps them (a
# new pair would leave the old threads idle for good); a forked child, whose
# copy has no threads, starts its own.


@derived(settings=(), fork_safe=True)
def _pool() -> _DaemonPool:
    return _DaemonPool(_POOL_SIZE)


@derived(settings=(), fork_safe=True)
def _loop() -> asyncio.AbstractEventLoop:
    """The event loop, in a daemon thread, of the rounds run under WSGI."""
    loop = asyncio.new_event_loop()
    threading.Thread(
        target=loop.run_forever, name="microkit-health-loop", daemon=True
    ).start()
    return loop


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


# --- one round -------------------------------------------------------------------


async def _check(check: _Check) -> CheckResult:
    awaitable: Awaitable[CheckResult]
    if check.is_async:
        awaitable = _run_async(check)
    else:
        # Join the check's run still under way, if any, rather than start one.
        if check.running is None or check.running.done():
            check.running = _pool().submit(functools.partial(_run_sync, check))
        awaitable = _wait(check.running)
    try:
        return await asyncio.wait_for(awaitable, check.timeout)
    except asyncio.TimeoutError:
        return _result(check, check.timeout, "fail", "timeout")


def _now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- rounds shared and reused ------------------------------------------------------


class _Probe:
    """A probe's round under way and its last report, shared by its callers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (report, monotonic expiry): one attribute, read without the lock.
        self.cached: tuple[HealthReport, float] | None = None
        self.last: HealthReport | None = None
        self.round: concurrent.futures.Future[HealthReport] | None = None


@derived(settings=_CHECKS_DEPEND_ON, fork_safe=True)
def _probes() -> dict[str, _Probe]:
    """Fork-safe: a forked worker forgets the rounds its parent had under way."""
    return {probe: _Probe() for probe in PROBES}


def _join(
    probe: str, fresh: bool
) -> tuple[_Probe, concurrent.futures.Future[HealthReport], bool]:
    """The round a caller of ``probe`` waits for, and whether it starts it."""
    try:
        state = _probes()[probe]
    except KeyError:
        raise ValueError(f"Unknown probe {probe!r}; the probes are {PROBES}.") from None
    cached = state.cached
    if not fresh and cached is not None and time.monotonic() < cached[1]:
        reused: concurrent.futures.Future[HealthReport] = concurrent.futures.Future()
        reused.set_result(cached[0])
        return state, reused, False
    with state.lock:
        if state.round is not None:
            return state, state.round, False
        state.round = concurrent.futures.Future()
        return state, state.round, True


def run_probe(probe: str, *, fresh: bool = False) -> HealthReport:
    """Run ``probe``'s checks (``"live"``, ``"ready"`` or ``"startup"``).

    A report younger than ``MICROKIT["HEALTH"]["RESULT_TTL"]`` is returned as is
    unless ``fresh``; a caller arriving while a round runs waits for that round.
    """
    state, round_, leader = _join(probe, fresh)
    if leader:
        # On the process's loop, in a fresh context: the round must not share
        # the request thread's per-thread objects (Django keeps connections and
        # caches in context variables).
        contextvars.Context().run(
            asyncio.run_coroutine_threadsafe, _lead(probe, state, round_), _loop()
        )
    return round_.result()


# Rounds led by arun_probe, kept from the garbage collector until they end.
_tasks: set[asyncio.Task[None]] = set()


async def arun_probe(probe: str, *, fresh: bool = False) -> HealthReport:
    """:func:`run_probe` for async code: checks run on the running event loop."""
    state, round_, leader = _join(probe, fresh)
    if leader:
        # The round is a task of its own: a probe whose client goes away does
        # not cancel the round others wait for.
        task = asyncio.get_running_loop().create_task(_lead(probe, state, round_))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    return await _wait(round_)


async def _lead(
    probe: str, state: _Probe, round_: concurrent.futures.Future[HealthReport]
) -> None:
    """Run a round and publish its report (or what ended it) to its waiters."""
    try:
        started = _now()
        results = await asyncio.gather(*map(_check, _probe_checks(probe)))
    except BaseException as error:
        with state.lock:
            state.round = None
        if isinstance(error, Exception):
            round_.set_exception(error)
            return
        round_.set_exception(
            RuntimeError("The round of health checks was interrupted.")
        )
        raise
    statuses = {result.status for result in results}
    status: Status = (
        "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    )
    report = HealthReport(probe, status, started, tuple(results))
    # A probe without checks has nothing that could change: keep its report.
    ttl = microkit_settings.HEALTH["RESULT_TTL"] if results else math.inf
    with state.lock:
        previous, state.last = state.last, report
        state.cached = (report, time.monotonic() + ttl) if ttl > 0 else None
        state.round = None
    _log_changes(previous, report)
    round_.set_result(report)


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
