"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from django_microkit.client import ServiceClient
from django_microkit.client.breaker import BreakerConfig, CircuitBreaker, State
from django_microkit.client.errors import CircuitOpenError
from django_microkit.conf import DEFAULTS


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **config: object) -> CircuitBreaker:
    return CircuitBreaker("catalog", BreakerConfig(**config), clock=clock)  # type: ignore[arg-type]


def outcome(cb: CircuitBreaker, failed: bool) -> None:
    cb.record(cb.before_attempt(), failed=failed)


def state_of(cb: CircuitBreaker) -> State:
    """Read the state afresh: the tests change it between reads, and mypy
    would narrow a property read twice to the first value seen."""
    return cb.state


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    cb = breaker(clock, failures=3)
    for failed in (True, True, False, True, True):
        outcome(cb, failed)
    assert state_of(cb) == "closed"
    outcome(cb, True)
    assert state_of(cb) == "open"
    with pytest.raises(CircuitOpenError) as caught:
        cb.before_attempt()
    assert caught.value.service == "catalog"
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ([True, False, True, False], "open"),  # 2 of 4 >= 0.5
        ([True, False, False, False], "closed"),  # 1 of 4
        ([True, False, True], "closed"),  # window not full yet
    ],
)
def test_failure_ratio_over_a_window(outcomes: list[bool], state: str) -> None:
    cb = breaker(Clock(), failures=100, ratio=0.5, window=4)
    for failed in outcomes:
        outcome(cb, failed)
    assert state_of(cb) == state


def test_ratio_window_slides() -> None:
    cb = breaker(Clock(), failures=100, ratio=0.75, window=4)
    for failed in (True, True, False, False, False, True, True):
        outcome(cb, failed)
    assert state_of(cb) == "closed"  # last four: F F T T
    outcome(cb, True)
    assert state_of(cb) == "open"  # F T T T


def test_half_open_after_cool_down_with_one_trial() -> None:
    clock = Clock()
    cb = breaker(clock, failures=1, cool_down=10)
    outcome(cb, True)
    clock.now += 9.5
    with pytest.raises(CircuitOpenError) as caught:
        cb.before_attempt()
    assert caught.value.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert state_of(cb) == "half_open"
    trial = cb.before_attempt()
    with pytest.raises(CircuitOpenError) as caught:
        cb.before_attempt()
    assert caught.value.retry_after == 0.0
    cb.record(trial, failed=False)
    assert state_of(cb) == "closed"
    cb.before_attempt()


def test_failed_trial_restarts_the_cool_down() -> None:
    clock = Clock()
    cb = breaker(clock, failures=1, cool_down=10)
    outcome(cb, True)
    clock.now += 10
    outcome(cb, True)
    assert state_of(cb) == "open"
    clock.now += 9
    assert state_of(cb) == "open"
    clock.now += 1
    assert state_of(cb) == "half_open"


def test_released_trial_lets_the_next_caller_try() -> None:
    clock = Clock()
    cb = breaker(clock, failures=1, cool_down=1)
    outcome(cb, True)
    clock.now += 1
    cb.release(cb.before_attempt())
    assert state_of(cb) == "half_open"
    outcome(cb, False)
    assert state_of(cb) == "closed"


def test_outcomes_from_before_a_state_change_are_ignored() -> None:
    clock = Clock()
    cb = breaker(clock, failures=1, cool_down=1)
    slow = cb.before_attempt()  # started while closed
    outcome(cb, True)  # opens
    clock.now += 1
    trial = cb.before_attempt()
    cb.record(slow, failed=False)  # must not close the breaker
    cb.release(slow)
    assert state_of(cb) == "half_open"
    with pytest.raises(CircuitOpenError):
        cb.before_attempt()
    cb.record(trial, failed=True)
    assert state_of(cb) == "open"


def test_release_outside_half_open_changes_nothing() -> None:
    cb = breaker(Clock(), failures=2)
    outcome(cb, True)
    cb.release(cb.before_attempt())
    outcome(cb, True)
    assert state_of(cb) == "open"


def test_reset_closes() -> None:
    cb = breaker(Clock(), failures=1)
    outcome(cb, True)
    cb.reset()
    assert state_of(cb) == "closed"
    outcome(cb, False)


def test_concurrent_trials_get_one_permit() -> None:
    clock = Clock()
    cb = breaker(clock, failures=1, cool_down=1)
    outcome(cb, True)
    clock.now += 1
    permits: list[int] = []
    refused: list[CircuitOpenError] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            permits.append(cb.before_attempt())
        except CircuitOpenError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(permits), len(refused)) == (1, 7)


def test_the_defaults_are_those_of_the_settings() -> None:
    section = DEFAULTS["CLIENT"]
    assert isinstance(section, dict)
    defaults = section["BREAKER"].default
    assert BreakerConfig() == BreakerConfig.from_settings(defaults)
    assert BreakerConfig() == BreakerConfig(5, None, 20, 30.0)


def test_a_breaker_setting_left_out_keeps_its_default(settings: Any) -> None:
    settings.MICROKIT = {
        "CLIENT": {"BREAKER": {"RATIO": 0.5}},
        "SERVICES": {
            "catalog": {"BASE_URL": "http://catalog", "BREAKER": {"FAILURES": 3}}
        },
    }
    assert ServiceClient("catalog").breaker.config == BreakerConfig(
        failures=3, ratio=0.5, window=20, cool_down=30.0
    )
