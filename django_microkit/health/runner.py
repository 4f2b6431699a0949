"""Running a probe: its checks at once, each within its timeout, one round
shared by the callers that arrive while it runs and reused for a short time.

Sync checks run in daemon threads of the process's own; async checks on the
server's loop under ASGI, and under WSGI on a loop of the process's own, in a
daemon thread. A hung sync check keeps its thread (Python cannot stop one):
later rounds wait on that same run rather than start another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import datetime
import inspect
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, TypeVar

from django.db import close_old_connections
from health_check.exceptions import HealthCheckException, ServiceWarning

from django_microkit.conf import derived, microkit_settings
from django_microkit.drain import is_draining
from django_microkit.health._registry import (
    CHECKS_DEPEND_ON,
    PROBES,
    Check,
    probe_checks,
)
from django_microkit.metrics.families import observe_health_check

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
    check: Check,
    seconds: float,
    status: Status = "pass",
    output: str | None = None,
    detail: str | None = None,
) -> CheckResult:
    if status == "fail" and not check.critical:
        status = "warn"
    fields = (check.name, status, seconds * 1000, check.component_type, check.critical)
    return CheckResult(*fields, output, detail)


def _timed_out(check: Check) -> CheckResult:
    return _result(check, check.timeout, "fail", "timeout")


def _ended(
    check: Check, start: float, value: Any, error: BaseException | None
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
    """Close this pool thread's unusable or expired database connections, as the
    end of a request does: else an ORM check would keep failing on a broken
    connection after the database restarts."""
    try:
        close_old_connections()
    except Exception:
        # Only tidying: the check's own outcome must not depend on it.
        logger.debug("Could not close old database connections.", exc_info=True)


def _run_sync(check: Check) -> CheckResult:
    """Run ``check`` in a pool thread. Even a ``BaseException`` (``SystemExit``,
    ``CancelledError`` out of ``async_to_sync``) is the check failing: it must
    not end the thread, else the check's run would never end and every later
    round would report it ``timeout`` without running it again."""
    _close_old_connections()
    try:
        return _call(check, BaseException)
    finally:
        _close_old_connections()


def _call(check: Check, catch: type[BaseException]) -> CheckResult:
    """Call a sync check (or its sync equivalent) and say what it reported,
    ``catch`` and its subclasses counting as the check failing."""
    start = time.perf_counter()
    try:
        value = (check.sync_call or check.call)()
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError("the check returned a coroutine; define it `async def`")
    except catch as error:
        return _ended(check, start, None, error)
    return _ended(check, start, value, None)


# A sync check runs in the request thread (WSGI, INLINE_CHECKS) once its last
# _INLINE_AFTER runs in a row each passed within _INLINE_SHARE of its timeout.
# A streak, because a check's first runs (a connection opened, a module
# imported) say little of its usual pace. A small share, because the one thing
# an inline run gives up is being abandoned at its deadline: a dependency that
# slows down shows it in a longer run, which sends the check back to the pool
# while it still has 95% of its time to spare; a failure does too, as the
# dependency that refused a connection is the one whose next connection may
# hang. At the default timeout (2 s) the share is 100 ms, far above a SELECT 1
# or a cache round trip and far below what the pool's deadline protects from.
_INLINE_AFTER = 5
_INLINE_SHARE = 0.05


def _inline(check: Check) -> bool:
    """Whether ``check`` may run in the request thread this round: a sync check
    with a streak of quick passes, and no run of it still under way in the pool
    (a hung check is joined there, never run beside itself)."""
    fast_runs, running = check.fast_runs, check.running
    return (
        fast_runs is not None
        and fast_runs >= _INLINE_AFTER
        and (running is None or running.done())
    )


def _run_inline(check: Check, deadline: float) -> CheckResult:
    """Run ``check`` in the request thread. It cannot be abandoned at its
    deadline, as a pool thread's run is: one that ends past it is reported
    ``timeout``, as the pool would have reported it, and runs in the pool from
    then on. An exception that is no ``Exception`` (``SystemExit`` from a
    signal handler, ``KeyboardInterrupt``) belongs to the request thread: it is
    raised on, as out of any view."""
    try:
        result = _call(check, Exception)
    except BaseException:
        check.fast_runs = 0
        raise
    if time.perf_counter() > deadline:
        check.fast_runs = None
        return _timed_out(check)
    return result


def _learn(check: Check, result: CheckResult) -> None:
    """Count ``result`` in ``check``'s streak of quick passes. No lock: a
    probe's rounds follow one another, and a count off by one is harmless."""
    if check.fast_runs is None:
        return
    quick = result.duration < check.timeout * (_INLINE_SHARE * 1000)
    check.fast_runs = check.fast_runs + 1 if quick and result.status == "pass" else 0


async def _run_async(check: Check) -> CheckResult:
    start = time.perf_counter()
    try:
        value = await check.call()
    except Exception as error:
        return _ended(check, start, None, error)
    return _ended(check, start, value, None)


# --- the process's own threads ---------------------------------------------------


# The threads and the loop depend on no setting: a settings change keeps them
# (new ones would leave the old threads idle for good); a forked child, whose
# copy has no threads, starts its own.

_Queue = queue.SimpleQueue[tuple[concurrent.futures.Future[CheckResult], Check]]


@derived(settings=(), fork_safe=True)
def _pool() -> tuple[_Queue, threading.Semaphore]:
    """The sync checks waiting for a thread, and a count of the idle threads."""
    return queue.SimpleQueue(), threading.Semaphore(0)


def _start_sync(check: Check) -> concurrent.futures.Future[CheckResult]:
    """Run ``check`` in a thread of the pool, or join its run still under way.

    The threads are daemons: a hung check never holds up the exit of a worker.
    One is started only when none is idle, and a check has one run at a time:
    there are never more threads than checks.
    """
    if check.running is None or check.running.done():
        waiting, idle = _pool()
        check.running = concurrent.futures.Future()
        waiting.put((check.running, check))
        if not idle.acquire(blocking=False):
            name = "microkit-health-check"
            threading.Thread(target=_work, name=name, daemon=True).start()
    return check.running


def _work() -> None:
    waiting, idle = _pool()
    while True:
        future, check = waiting.get()
        try:
            result = _run_sync(check)
        except BaseException as error:
            # Not even a result could be made (the error's str() failed): the
            # thread lives on all the same.
            result = _result(check, 0.0, "fail", "error", type(error).__name__)
        future.set_result(result)
        del future, check, result
        idle.release()


@derived(settings=(), fork_safe=True)
def _loop() -> asyncio.AbstractEventLoop:
    """The event loop, in a daemon thread, of async checks run under WSGI."""
    loop = asyncio.new_event_loop()
    threading.Thread(
        target=loop.run_forever, name="microkit-health-loop", daemon=True
    ).start()
    return loop


def _wait(future: concurrent.futures.Future[_T]) -> asyncio.Future[_T]:
    """Await ``future`` from a coroutine; cancelling the wait, as a timeout does,
    leaves ``future`` alone: other rounds may be waiting on it."""
    return asyncio.shield(asyncio.wrap_future(future))


# --- one round -------------------------------------------------------------------


def _round(checks: Sequence[Check], inline: bool = False) -> list[CheckResult]:
    """A round under WSGI, led from the request thread: it hands each check to
    the thread or loop that runs it, with ``inline`` runs the quick sync checks
    itself meanwhile, and waits for each other check until its deadline."""
    start = time.perf_counter()
    futures: dict[Check, concurrent.futures.Future[CheckResult]] = {}
    here: list[Check] = []
    for check in checks:
        if check.sync_call is None:
            # A fresh context: the check must not share the request thread's
            # per-thread objects (Django keeps caches in context variables).
            futures[check] = contextvars.Context().run(
                asyncio.run_coroutine_threadsafe, _run_async(check), _loop()
            )
        elif inline and _inline(check):
            here.append(check)
        else:
            futures[check] = _start_sync(check)
    results = {check: _run_inline(check, start + check.timeout) for check in here}
    # Shortest timeout first: each wait ends by its own check's deadline, so a
    # check that ends after its deadline is not taken for one that passed.
    for check in sorted(futures, key=lambda check: check.timeout):
        future, remaining = futures[check], start + check.timeout - time.perf_counter()
        try:
            result = future.result(timeout=max(remaining, 0.0))
        except concurrent.futures.TimeoutError:
            result = _timed_out(check)
            if check.sync_call is None:
                future.cancel()  # on the loop; a pool thread's run is joined
        else:
            if remaining < 0 and result.duration > check.timeout * 1000:
                # Found done only after an inline run held the round past its
                # deadline, and it ran longer than its timeout: it was late.
                result = _timed_out(check)
        results[check] = result
    for check in checks:
        if check.sync_call is not None:
            _learn(check, results[check])
    return [results[check] for check in checks]


async def _check(check: Check) -> CheckResult:
    """A check under ASGI, held to its timeout. Not ``asyncio.wait_for``: it
    waits for the cancelled check to finish, and a check slow to wind down
    would hold the round past its deadline."""
    task = asyncio.ensure_future(
        _run_async(check) if check.is_async else _wait(_start_sync(check))
    )
    try:
        done, _ = await asyncio.wait((task,), timeout=check.timeout)
    finally:
        if not task.done():
            task.cancel()
            _keep(task)
    return task.result() if done else _timed_out(check)


def _now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- rounds shared and reused ------------------------------------------------------


_Round = concurrent.futures.Future[HealthReport]


@dataclasses.dataclass(eq=False)
class _Probe:
    """A probe's round under way and its last report, shared by its callers."""

    name: str
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    # (report, monotonic expiry): one attribute, read without the lock.
    cached: tuple[HealthReport, float] | None = None
    last: HealthReport | None = None
    round: _Round | None = None

    def reusable(self, fresh: bool) -> HealthReport | None:
        """The last report, if it is young enough and the caller allows it."""
        cached = self.cached
        if fresh or cached is None or time.monotonic() >= cached[1]:
            return None
        return cached[0]

    def join(self, fresh: bool) -> tuple[_Round, bool]:
        """The round a caller waits for, and whether it leads it. The report is
        looked for again under the lock: one may have been published since the
        caller found none, and it must not start a second round."""
        with self.lock:
            report = self.reusable(fresh)
            if report is not None:
                reused: _Round = concurrent.futures.Future()
                reused.set_result(report)
                return reused, False
            if self.round is not None:
                return self.round, False
            self.round = concurrent.futures.Future()
            return self.round, True

    def publish(self, round_: _Round, started: str, results: list[CheckResult]) -> None:
        """Give the round's report to its waiters, and keep it for RESULT_TTL.

        The waiters have their report before the status changes are logged: a
        faulty log filter or handler must not keep it from them."""
        statuses = {result.status for result in results}
        status: Status = (
            "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
        )
        report = HealthReport(self.name, status, started, tuple(results))
        ttl = microkit_settings.HEALTH["RESULT_TTL"]
        with self.lock:
            previous, self.last = self.last, report
            self.cached = (report, time.monotonic() + ttl) if ttl > 0 else None
            self.round = None
        round_.set_result(report)
        with contextlib.suppress(Exception):
            _log_changes(previous, report)
        for result in results:
            seconds = result.duration / 1000
            observe_health_check(self.name, result.name, result.status, seconds)

    def abandon(self, round_: _Round, error: BaseException) -> None:
        """End the round with what interrupted it: its waiters must not hang.
        A round already published is left as it is."""
        with self.lock:
            if self.round is round_:
                self.round = None
        if not round_.done():
            if not isinstance(error, Exception):
                error = RuntimeError("The round of health checks was interrupted.")
            round_.set_exception(error)


@derived(settings=CHECKS_DEPEND_ON, fork_safe=True)
def _probes() -> dict[str, _Probe]:
    """Fork-safe: a forked worker forgets the rounds its parent had under way."""
    return {probe: _Probe(probe) for probe in PROBES}


def _state(probe: str) -> _Probe:
    try:
        return _probes()[probe]
    except KeyError:
        raise ValueError(f"Unknown probe {probe!r}; the probes are {PROBES}.") from None


def _patience(probe: str) -> float:
    """How long a caller waits for a round another leads: the probe's deadline,
    its largest timeout, and a margin. Past it the round is stuck (its loop
    blocked, by this very caller perhaps): the caller must get an answer."""
    return max((check.timeout for check in probe_checks(probe)), default=0.0) + 1.0


def _unanswered(probe: str) -> HealthReport:
    """What a caller whose round did not end in time answers: ``fail``, each
    check ``timeout``."""
    results = (_timed_out(check) for check in probe_checks(probe))
    return HealthReport(probe, "fail", _now(), tuple(results))


def _draining(probe: str) -> HealthReport | None:
    """Readiness of a draining process (``django_microkit.drain``): ``fail`` at
    once, without running the checks, so that load balancers turn away."""
    if probe != "ready" or not is_draining():
        return None
    result = CheckResult("drain", "fail", 0.0, "system", True, "draining")
    return HealthReport(probe, "fail", _now(), (result,))


def run_probe(probe: str, *, fresh: bool = False, inline: bool = False) -> HealthReport:
    """Run ``probe``'s checks (``"live"``, ``"ready"`` or ``"startup"``).

    A report younger than ``MICROKIT["HEALTH"]["RESULT_TTL"]`` is returned as is
    unless ``fresh``; a caller arriving while a round runs waits for that round.
    While the process drains, readiness fails at once.

    With ``inline`` (and ``MICROKIT["HEALTH"]["INLINE_CHECKS"]``), a round this
    caller leads runs the sync checks that have been quick lately in the
    calling thread, as the probe endpoints do under WSGI: only from a thread
    whose database connections Django tidies (a request's), as inline checks
    use the thread's own.
    """
    state = _state(probe)
    report = _draining(probe) or state.reusable(fresh)
    if report is not None:
        return report
    round_, leader = state.join(fresh)
    if not leader:
        try:
            return round_.result(timeout=_patience(probe))
        except concurrent.futures.TimeoutError:
            return _unanswered(probe)
    try:
        started = _now()
        inline = inline and microkit_settings.HEALTH["INLINE_CHECKS"]
        state.publish(round_, started, _round(probe_checks(probe), inline))
    except BaseException as error:
        state.abandon(round_, error)
        raise
    return round_.result()


# Tasks kept from the garbage collector until they end: the rounds arun_probe
# leads, and the checks cancelled at their timeout but still winding down.
_tasks: set[asyncio.Future[Any]] = set()


def _keep(task: asyncio.Future[Any]) -> None:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def arun_probe(probe: str, *, fresh: bool = False) -> HealthReport:
    """:func:`run_probe` for async code: checks run on the running event loop."""
    state = _state(probe)
    report = _draining(probe) or state.reusable(fresh)
    if report is not None:
        return report
    round_, leader = state.join(fresh)
    if leader:
        # The round is a task of its own: a probe whose client goes away does
        # not cancel the round others wait for.
        _keep(asyncio.get_running_loop().create_task(_lead(state, round_)))
    try:
        return await asyncio.wait_for(_wait(round_), _patience(probe))
    except asyncio.TimeoutError:
        return _unanswered(probe)


async def _lead(state: _Probe, round_: _Round) -> None:
    try:
        started = _now()
        results = await asyncio.gather(*map(_check, probe_checks(state.name)))
        state.publish(round_, started, results)
    except BaseException as error:
        state.abandon(round_, error)
        if not isinstance(error, Exception):
            raise


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
