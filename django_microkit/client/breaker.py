"""A circuit breaker per target service, shared by every client in the process.

When a service keeps failing, calling it again only adds load to it and makes
every caller wait for a timeout. After ``FAILURES`` consecutive failed attempts
(or, when ``RATIO`` is set, that share of failures among the last ``WINDOW``
attempts) the breaker *opens*: calls fail at once with
:class:`~django_microkit.client.errors.CircuitOpenError`, without touching the
network. After ``COOL_DOWN`` seconds it is *half-open*: exactly one trial
attempt goes through while the others still fail fast; the trial's success
closes the breaker, its failure opens it for another cool-down.

A failure is an attempt that got no answer (timeout, connection error) or a 5xx
answer; any other answer, including a 4xx, shows the service is up.

Why not pybreaker: it runs the protected call while holding the breaker's lock,
which serialises every concurrent call to the same service in a threaded
server; it learns outcomes only from exceptions (a 503 answer would have to be
turned into one and back); it has no failure-ratio mode; and it would be one
more dependency for about a hundred lines of code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import structlog

from django_microkit.client.errors import CircuitOpenError
from django_microkit.conf import DEFAULTS, Option
from django_microkit.metrics.families import observe_breaker

__all__ = ["BreakerConfig", "CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]

_log = structlog.get_logger("django_microkit.client")
_CLIENT_DEFAULTS = cast("dict[str, Option]", DEFAULTS["CLIENT"])
#: What a ``BREAKER`` dict leaves out: ``MICROKIT["CLIENT"]["BREAKER"]``'s default.
_DEFAULTS: Mapping[str, Any] = _CLIENT_DEFAULTS["BREAKER"].default


@dataclass(frozen=True)
class BreakerConfig:
    """When a breaker opens and for how long."""

    failures: int = _DEFAULTS["FAILURES"]
    ratio: float | None = _DEFAULTS["RATIO"]
    window: int = _DEFAULTS["WINDOW"]
    cool_down: float = _DEFAULTS["COOL_DOWN"]

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> BreakerConfig:
        """From a ``BREAKER`` dict; a key it leaves out keeps its default."""
        values = {**_DEFAULTS, **values}
        return cls(
            failures=values["FAILURES"],
            ratio=values["RATIO"],
            window=values["WINDOW"],
            cool_down=float(values["COOL_DOWN"]),
        )


class CircuitBreaker:
    """The breaker of one target service. Thread-safe: the lock is held only to
    read or change the state, never while a call runs.

    Each attempt asks :meth:`before_attempt` for a permit (or gets
    :class:`CircuitOpenError`) and reports its outcome with :meth:`record`, or
    :meth:`release` when it ended without a verdict on the service (a local
    error). A permit names the state generation it was given in: outcomes of
    attempts started before the last state change are ignored, so only the
    trial's outcome decides a half-open breaker.
    """

    def __init__(
        self,
        service: str,
        config: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._generation = 0
        self._consecutive = 0
        self._outcomes: deque[bool] = deque(maxlen=config.window)
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half_open`` (an open breaker whose
        cool-down has passed is reported half-open)."""
        with self._lock:
            if self._state == "open" and self._cool_down_left() <= 0:
                return "half_open"
            return self._state

    def before_attempt(self) -> int:
        """A permit to send one attempt, or :class:`CircuitOpenError`."""
        with self._lock:
            if self._state == "open":
                left = self._cool_down_left()
                if left > 0:
                    raise CircuitOpenError(self.service, retry_after=left)
                self._change("half_open")
            if self._state == "half_open":
                if self._trial_running:
                    raise CircuitOpenError(self.service, retry_after=0.0)
                self._trial_running = True
            return self._generation

    def record(self, permit: int, *, failed: bool) -> None:
        """The outcome of the attempt that got ``permit``."""
        with self._lock:
            if permit != self._generation:
                return
            if self._state == "half_open":
                self._trial_running = False
                self._change("open" if failed else "closed")
                return
            self._outcomes.append(failed)
            self._consecutive = self._consecutive + 1 if failed else 0
            if self._should_open():
                self._change("open")

    def release(self, permit: int) -> None:
        """The attempt ended without saying anything about the service."""
        with self._lock:
            if permit == self._generation and self._state == "half_open":
                self._trial_running = False

    def reset(self) -> None:
        """Back to closed with no history."""
        with self._lock:
            self._change("closed", log=False)

    def _should_open(self) -> bool:
        if self._consecutive >= self.config.failures:
            return True
        ratio = self.config.ratio
        outcomes = self._outcomes
        return (
            ratio is not None
            and len(outcomes) == outcomes.maxlen
            and sum(outcomes) >= ratio * len(outcomes)
        )

    def _cool_down_left(self) -> float:
        return self._opened_at + self.config.cool_down - self._clock()

    def _change(self, state: State, *, log: bool = True) -> None:
        if log:
            _log.log(
                logging.WARNING if state == "open" else logging.INFO,
                f"circuit_{state}",
                service=self.service,
                previous=self._state,
                consecutive_failures=self._consecutive,
            )
        self._state = state
        observe_breaker(self.service, state)
        self._generation += 1
        self._trial_running = False
        if state == "open":
            self._opened_at = self._clock()
        else:
            self._consecutive = 0
            self._outcomes.clear()
