"""A slow dependency for the probe benchmark: each check sleeps 100 ms and
counts its runs, so a burst of probes shows how many rounds it really cost."""

from __future__ import annotations

import dataclasses
import threading
import time

from health_check.base import HealthCheck

DELAY = 0.1
_lock = threading.Lock()
runs = 0


def _sleep() -> None:
    global runs
    with _lock:
        runs += 1
    time.sleep(DELAY)


def sleeping_check() -> None:
    """A django-microkit check (a plain function)."""
    _sleep()


@dataclasses.dataclass
class SleepingCheck(HealthCheck):
    """The same check for django-health-check's own view."""

    name: str = "sleep"

    def run(self) -> None:
        _sleep()
