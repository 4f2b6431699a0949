"""Cost of a readiness probe whose checks are slow, and of a burst of probes.

Every check sleeps 100 ms and counts its runs. Measured in-process under WSGI:

- wall time of one fresh readiness probe (``RESULT_TTL = 0``) with 1, 4 and 8
  such checks, for django-microkit and for django-health-check's own view running
  the same checks: running the checks concurrently keeps it near one check;
- a burst of 100 probes within ``RESULT_TTL`` (1 s), one after the other and
  from 16 threads at once: how many times the checks really ran.

    python benchmarks/probes.py [--repeat 5] [--output -]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.results import RESULTS, environment, load, publish

COUNTS = (1, 4, 8)
BURST = 100
THREADS = 16


def _setup() -> Callable[[str], int]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.stacks.probes"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    from benchmarks.worker import _consume, _environ

    application = get_wsgi_application()

    def get(path: str) -> int:
        statuses: list[int] = []

        def start_response(status: str, headers: Any, exc: Any = None) -> Any:
            statuses.append(int(status[:3]))
            return lambda data: None

        _consume(application(_environ("GET", path, b""), start_response))
        return statuses[0]

    return get


def _checks(count: int) -> list[dict[str, str]]:
    return [
        {"check": "benchmarks.benchapp.checks.sleeping_check", "name": f"sleep-{i}"}
        for i in range(count)
    ]


def _microkit(count: int, ttl: float) -> Any:
    from django.test import override_settings

    from benchmarks.stacks.microkit import MICROKIT

    health = {"READINESS_CHECKS": _checks(count), "RESULT_TTL": ttl}
    return override_settings(MICROKIT={**MICROKIT, "HEALTH": health})


def _timed(get: Callable[[str], int], path: str) -> tuple[float, int]:
    start = time.perf_counter()
    status = get(path)
    return (time.perf_counter() - start) * 1000, status


def _runs() -> int:
    from benchmarks.benchapp import checks

    return checks.runs


def _burst(get: Callable[[str], int], path: str, threads: int) -> tuple[int, float]:
    """Check runs and wall time (ms) of BURST probes from ``threads`` threads."""
    before = _runs()
    start = time.perf_counter()
    if threads == 1:
        statuses = [get(path) for _ in range(BURST)]
    else:
        barrier = threading.Barrier(threads)

        def probe(index: int) -> int:
            if index < threads:
                barrier.wait()
            return get(path)

        with ThreadPoolExecutor(threads) as pool:
            statuses = list(pool.map(probe, range(BURST)))
    elapsed = (time.perf_counter() - start) * 1000
    assert set(statuses) == {200}, statuses
    return _runs() - before, elapsed


def measure(repeat: int) -> str:
    get = _setup()
    start_load = load()
    lines = [
        "Each check sleeps 100 ms. In-process WSGI calls. django-microkit runs a "
        "probe's checks concurrently in a thread pool that lives for the process; "
        "django-health-check's view (`HealthCheckView`, async) runs sync checks in "
        "its event loop's default executor, one loop per request under WSGI.",
        "",
        f"Fresh readiness probe (`RESULT_TTL = 0`), wall time in ms, median of "
        f"{repeat} (min–max):",
        "",
        "| checks | django-microkit | django-health-check view |",
        "|---|---|---|",
    ]
    for count in COUNTS:
        mine: list[float] = []
        theirs: list[float] = []
        with _microkit(count, 0):
            get("/health/ready")  # first use: imports, pool threads
            for _ in range(repeat):
                for path, times in (
                    ("/health/ready", mine),
                    (f"/health/hc-{count}", theirs),
                ):
                    elapsed, status = _timed(get, path)
                    assert status == 200, (path, status)
                    times.append(elapsed)
        lines.append(
            f"| {count} × 100 ms | {statistics.median(mine):.1f} "
            f"({min(mine):.1f}–{max(mine):.1f}) | {statistics.median(theirs):.1f} "
            f"({min(theirs):.1f}–{max(theirs):.1f}) |"
        )
    count = 4
    lines += [
        "",
        f"A burst of {BURST} readiness probes with {count} checks of 100 ms, "
        "`RESULT_TTL = 1` (the default): check runs (each of the "
        f"{count} checks counts one) and wall time of the whole burst:",
        "",
        "| probes | django-microkit runs | ms | django-health-check view runs | ms |",
        "|---|---|---|---|---|",
    ]
    for threads in (1, THREADS):
        with _microkit(count, 1.0):
            mine_runs, mine_ms = _burst(get, "/health/ready", threads)
        if threads == 1:
            theirs_cell = "not run (100 rounds: about 10 s) | —"
        else:
            theirs_runs, theirs_ms = _burst(get, f"/health/hc-{count}", threads)
            theirs_cell = f"{theirs_runs} | {theirs_ms:.0f}"
        label = "one after another" if threads == 1 else f"from {threads} threads"
        lines.append(
            f"| {BURST} {label} | {mine_runs} | {mine_ms:.0f} | {theirs_cell} |"
        )
    header = [
        "## Health probes: slow checks and bursts",
        "",
        environment("django-health-check")
        + f" Load average at the start: {start_load}.",
        "",
    ]
    return "\n".join(header + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    text = measure(args.repeat)
    publish("probes", text, args.output)


if __name__ == "__main__":
    main()
