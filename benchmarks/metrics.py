"""What the request metrics cost: the microkit stack with ``METRICS.ENABLED``
switched on and off between short batches, in one process, in prometheus_client's
single-process mode and in its multiprocess mode (values in memory-mapped files,
as under gunicorn with several workers), each in a process of its own.

The same process switches the setting, so the difference taken per pair of
batches leaves out what differs between processes and most of a shared
machine's noise. Times are CPU time of the process per request. Then
``observe_request`` alone, on and off (CPU time), and Python calls per request.

    python benchmarks/metrics.py [--pairs 100] [--batch 30] [--output -]
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in access_log.py: the repository root in place of this directory, whose
# http.py would shadow the standard library's.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

ENDPOINTS = ("list", "not_found", "invalid")
MODES = ("single-process", "multiprocess")
STATES = (True, False)


def _cpu_per_call(call: Callable[[], object], count: int) -> float:
    """CPU time of this process per call, µs."""
    begun = time.process_time_ns()
    for _ in range(count):
        call()
    return (time.process_time_ns() - begun) / count / 1000


def _python_calls(call: Callable[[], object], count: int = 50) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        call()
    profile.disable()
    total: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return total / count


def serve() -> None:
    """Answer the runner's commands, one JSON line each (the runner gives the
    process its settings module and its prometheus_client mode)."""
    from benchmarks.worker import _setup

    call = _setup()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings
    from django.urls import resolve

    from django_microkit.metrics.families import observe_request

    switch = {
        enabled: override_settings(
            MICROKIT={**settings.MICROKIT, "METRICS": {"ENABLED": enabled}}
        )
        for enabled in STATES
    }
    request, response = RequestFactory().get("/items/"), HttpResponse()
    request.resolver_match = resolve("/items/")
    started = time.perf_counter()
    for command in map(json.loads, sys.stdin):
        endpoint, count = command.get("endpoint", ""), command.get("count", 0)
        answer: dict[str, float] = {}
        for enabled in STATES:
            with switch[enabled]:
                one = (lambda e=endpoint: call(e)) if endpoint else None
                if command["do"] == "pair":
                    assert one is not None
                    one()  # settings-derived values made outside the timing
                    answer[str(enabled)] = _cpu_per_call(one, count)
                elif command["do"] == "calls":
                    assert one is not None
                    answer[str(enabled)] = _python_calls(one)
                else:
                    # CPU time, not wall time: on a busy machine the wait for
                    # a core is not the call's cost.
                    runs = [
                        _cpu_per_call(
                            lambda: observe_request(request, response, started),
                            20000,
                        )
                        for _ in range(7)
                    ]
                    answer[str(enabled)] = statistics.median(runs)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _start(mode: str, directory: str) -> Any:
    """The process measuring ``mode``, as a worker of run.py's harness."""
    from benchmarks.run import Worker

    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.stacks.microkit"
    if mode == "multiprocess":
        env["PROMETHEUS_MULTIPROC_DIR"] = directory
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    return Worker(mode, process)


def measure(pairs: int, batch: int) -> dict[str, Any]:
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        processes = [_start(mode, directory) for mode in MODES]
        try:
            for process in processes:  # warm up
                for endpoint in ENDPOINTS:
                    process.ask(do="pair", endpoint=endpoint, count=batch)
            for _ in range(pairs):
                for endpoint in ENDPOINTS:
                    random.shuffle(processes)
                    for process in processes:
                        answer = process.ask(do="pair", endpoint=endpoint, count=batch)
                        for state, value in answer.items():
                            times.setdefault((process.name, endpoint, state), [])
                            times[process.name, endpoint, state].append(value)
            calls = {
                (process.name, endpoint): process.ask(do="calls", endpoint=endpoint)
                for process in processes
                for endpoint in ENDPOINTS
            }
            alone = {process.name: process.ask(do="alone") for process in processes}
        finally:
            for process in processes:
                process.stop()
    return {"times": times, "calls": calls, "alone": alone}


def report(result: dict[str, Any]) -> list[str]:
    times, calls, alone = result["times"], result["calls"], result["alone"]
    lines = [
        "| prometheus_client mode | endpoint | metrics on, CPU µs | off, CPU µs "
        "| on − off per pair, µs (median; min–max) | Python calls, on / off |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        for endpoint in ENDPOINTS:
            on, off = times[mode, endpoint, "True"], times[mode, endpoint, "False"]
            cost = [a - b for a, b in zip(on, off, strict=True)]
            counted = calls[mode, endpoint]
            lines.append(
                f"| {mode} | {endpoint} | {statistics.median(on):.1f} "
                f"| {statistics.median(off):.1f} | {statistics.median(cost):.1f} "
                f"({min(cost):.1f}–{max(cost):.1f}) "
                f"| {counted['True']:.0f} / {counted['False']:.0f} |"
            )
    added = {
        mode: statistics.median(
            calls[mode, endpoint]["True"] - calls[mode, endpoint]["False"]
            for endpoint in ENDPOINTS
        )
        for mode in MODES
    }
    lines += [
        "",
        "Python calls added per request: "
        + ", ".join(f"{mode} +{added[mode]:.0f}" for mode in MODES)
        + ". A request's time varies by more than the metrics' cost between two "
        "batches on a shared machine: the paired medians above bound it, the "
        "call alone below measures it.",
        "",
        "`observe_request` alone (a resolved `GET /items/` answered 200; CPU "
        "time, median of 7 runs of 20,000 calls), µs per call, metrics on / off:",
        "",
    ]
    lines += [
        f"- {mode}: {alone[mode]['True']:.2f} / {alone[mode]['False']:.3f}"
        for mode in MODES
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    from benchmarks.results import RESULTS, environment, load, publish

    start = load()
    result = measure(args.pairs, args.batch)
    text = "\n".join(
        [
            "## The request metrics' cost",
            "",
            environment("prometheus-client") + f" Load average at the start: {start}.",
            "",
            "The microkit stack (access line on), `METRICS.ENABLED` switched "
            f"between batches of {args.batch} requests, {args.pairs} pairs, in "
            "one process per prometheus_client mode; CPU time per request, "
            "medians over batches. The budget is +10 µs per request.",
            "",
            *report(result),
        ]
    )
    publish("metrics", text + "\n", args.output or str(RESULTS))


if __name__ == "__main__":
    main()
