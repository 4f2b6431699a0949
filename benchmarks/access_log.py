"""What the access line costs inside a request: the microkit stack with the line
on and off, alternated in one process.

Two stacks in two processes differ in more than the setting (memory layout,
the moment the machine was busy); here the same process switches
``ACCESS_LOG.ENABLED`` between short batches, and the difference is taken per
pair of batches, which cancels most of the noise of a shared machine. Times
are CPU time of the process per request.

    python benchmarks/access_log.py [--pairs 100] [--batch 30] [--output -]
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
import time
from collections.abc import Callable

from benchmarks.results import RESULTS, environment, load, publish

ENDPOINTS = ("list", "not_found", "invalid")


def _batch(call: Callable[[str], int], endpoint: str, count: int) -> float:
    """CPU time of this process per request, µs: time the process spent
    waiting for a core, on a busy machine, is left out."""
    start = time.process_time_ns()
    for _ in range(count):
        call(endpoint)
    return (time.process_time_ns() - start) / count / 1000


def measure(pairs: int, batch: int) -> list[str]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.stacks.microkit"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    from benchmarks.worker import _setup

    call = _setup()
    from django.conf import settings
    from django.test import override_settings

    switch = {
        enabled: override_settings(
            MICROKIT={**settings.MICROKIT, "ACCESS_LOG": {"ENABLED": enabled}}
        )
        for enabled in (True, False)
    }
    lines = [
        "| endpoint | with the line, CPU µs | without, CPU µs "
        "| difference per pair, µs (median; min–max) | share of the request |",
        "|---|---|---|---|---|",
    ]
    for endpoint in ENDPOINTS:
        for _ in range(batch):
            call(endpoint)
        on: list[float] = []
        off: list[float] = []
        for _ in range(pairs):
            for enabled, times in ((True, on), (False, off)):
                with switch[enabled]:
                    times.append(_batch(call, endpoint, batch))
        diffs = [a - b for a, b in zip(on, off, strict=True)]
        with_line, without = statistics.median(on), statistics.median(off)
        share = statistics.median(diffs) / with_line
        lines.append(
            f"| {endpoint} | {with_line:.1f} | {without:.1f} "
            f"| {statistics.median(diffs):.1f} ({min(diffs):.1f}–{max(diffs):.1f}) "
            f"| {share:.1%} |"
        )
    return lines + [
        "",
        f"The line alone (`_log_access` on a finished request, "
        f"best of 5 × 2,000, wall time): {_alone():.1f} µs.",
    ]


def _alone() -> float:
    import timeit

    from django.http import HttpResponse
    from django.test import RequestFactory
    from structlog.contextvars import bind_contextvars, clear_contextvars

    from django_microkit.logging import _log_access

    request, response = RequestFactory().get("/items/"), HttpResponse()
    bind_contextvars(request_id="0" * 32, trace_id="1" * 32)
    try:
        best = min(
            timeit.repeat(
                lambda: _log_access(request, response, time.perf_counter(), None),
                number=2000,
                repeat=5,
            )
        )
    finally:
        clear_contextvars()
    return best / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    start = load()
    lines = measure(args.pairs, args.batch)
    text = "\n".join(
        [
            "## The access line's share",
            "",
            environment("structlog", "orjson")
            + f" Load average at the start: {start}.",
            "",
            f"The microkit stack in one process, `ACCESS_LOG.ENABLED` switched "
            f"between batches of {args.batch} requests, {args.pairs} pairs; CPU "
            "time per request, medians over batches. The line is rendered as JSON "
            "and written to /dev/null through a `logging.FileHandler`.",
            "",
            *lines,
        ]
    )
    text += "\n"
    publish("access-log", text, args.output)


if __name__ == "__main__":
    main()
