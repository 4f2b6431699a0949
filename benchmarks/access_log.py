"""What the access line costs inside a request: the microkit stack with the line
on and off, alternated in one process.

Two stacks in two processes differ in more than the setting (memory layout,
the moment the machine was busy); here the same process switches
``ACCESS_LOG.ENABLED`` between short batches, and the difference is taken per
pair of batches, which cancels most of the noise of a shared machine. Times
are CPU time of the process per request.

``--baseline DIR`` (a checkout of another commit: ``git worktree add DIR
COMMIT``) measures that checkout's line in its own process, in the same rounds
and in a fresh random order each round, for a before/after comparison from one
run.

    python benchmarks/access_log.py [--pairs 100] [--batch 30] [--output -]
    python benchmarks/access_log.py --baseline /tmp/base --output -
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place (in a worker, the root of the checkout it measures).
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
import time
import timeit
from collections.abc import Callable
from typing import Any

ENDPOINTS = ("list", "not_found", "invalid")
CURRENT, BASELINE = "current", "baseline"


def _batch(call: Callable[[str], int], endpoint: str, count: int) -> float:
    """CPU time of this process per request, µs: time the process spent
    waiting for a core, on a busy machine, is left out."""
    start = time.process_time_ns()
    for _ in range(count):
        call(endpoint)
    return (time.process_time_ns() - start) / count / 1000


def _calls(function: Callable[[], object], count: int = 50) -> float:
    """Python function calls per call of ``function`` (cProfile)."""

    def repeated() -> None:
        for _ in range(count):
            function()

    profile = cProfile.Profile()
    profile.runcall(repeated)
    total: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return (total - 1) / count  # without repeated() itself


def serve(root: Path) -> None:
    """Answer the runner's commands, one JSON line each, measuring the
    microkit stack of the checkout at ``root``."""
    sys.path[0] = str(root)
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
    line = _line()
    for command in map(json.loads, sys.stdin):
        endpoint, count = command.get("endpoint", ""), command.get("count", 0)
        answer: dict[str, Any] = {}
        if command["do"] == "pair":
            for enabled in (True, False):
                with switch[enabled]:
                    answer[str(enabled)] = _batch(call, endpoint, count)
        elif command["do"] == "calls":
            for enabled in (True, False):
                with switch[enabled]:
                    answer[str(enabled)] = _calls(lambda e=endpoint: call(e))
            answer["line"] = _calls(line)
        else:
            answer["alone"] = _alone(line)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _line() -> Callable[[], None]:
    """One access line for a finished request, as the middleware writes it."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from structlog.contextvars import bind_contextvars

    import django_microkit.logging

    # log_access; _log_access in checkouts from before it was public.
    module: Any = django_microkit.logging
    log_access = getattr(module, "log_access", None) or module._log_access
    request, response = RequestFactory().get("/items/"), HttpResponse()
    bind_contextvars(request_id="0" * 32, trace_id="1" * 32)
    return lambda: log_access(request, response, time.perf_counter(), None)


def _alone(line: Callable[[], None]) -> float:
    """The line alone, best of 5 × 2,000, wall time, µs."""
    return min(timeit.repeat(line, number=2000, repeat=5)) / 2000 * 1e6


def measure(checkouts: dict[str, Path], pairs: int, batch: int) -> dict[str, Any]:
    from benchmarks.run import Worker

    script = str(Path(__file__).resolve())
    workers = [
        Worker(
            name,
            subprocess.Popen(
                [sys.executable, script, "--serve", str(root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
            ),
        )
        for name, root in checkouts.items()
    ]
    times: dict[tuple[str, str, bool], list[float]] = {}
    try:
        for worker in workers:  # warm up
            for endpoint in ENDPOINTS:
                worker.ask(do="pair", endpoint=endpoint, count=batch)
        for _ in range(pairs):
            for endpoint in ENDPOINTS:
                random.shuffle(workers)
                for worker in workers:
                    answer = worker.ask(do="pair", endpoint=endpoint, count=batch)
                    for enabled in (True, False):
                        times.setdefault((worker.name, endpoint, enabled), []).append(
                            answer[str(enabled)]
                        )
        calls = {
            (worker.name, endpoint): worker.ask(do="calls", endpoint=endpoint)
            for worker in workers
            for endpoint in ENDPOINTS
        }
        alone: dict[str, list[float]] = {}
        for _ in range(5):
            random.shuffle(workers)
            for worker in workers:
                answer = worker.ask(do="alone")
                alone.setdefault(worker.name, []).append(answer["alone"])
    finally:
        for worker in workers:
            worker.stop()
    return {"times": times, "calls": calls, "alone": alone}


def _paired(values: list[float], others: list[float]) -> list[float]:
    return [a - b for a, b in zip(values, others, strict=True)]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def report(result: dict[str, Any], names: list[str]) -> list[str]:
    times, calls, alone = result["times"], result["calls"], result["alone"]

    def cost(name: str, endpoint: str) -> list[float]:
        return _paired(times[name, endpoint, True], times[name, endpoint, False])

    lines = [
        "| checkout | endpoint | with the line, CPU µs | without, CPU µs "
        "| difference per pair, µs (median; min–max) | share of the request "
        "| Python calls per request, with / without |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for endpoint in ENDPOINTS:
            on = statistics.median(times[name, endpoint, True])
            off = statistics.median(times[name, endpoint, False])
            count = calls[name, endpoint]
            lines.append(
                f"| {name} | {endpoint} | {on:.1f} | {off:.1f} "
                f"| {_summary(cost(name, endpoint))} "
                f"| {statistics.median(cost(name, endpoint)) / on:.1%} "
                f"| {count['True']:.0f} / {count['False']:.0f} |"
            )
    lines += [
        "",
        "The line alone (`log_access` on a finished request, best of 5 × 2,000, "
        "wall time, the median of 5 such runs; Python calls per line):",
        "",
    ]
    for name in names:
        lines.append(
            f"- {name}: {statistics.median(alone[name]):.1f} µs, "
            f"{calls[name, ENDPOINTS[0]]['line']:.0f} calls."
        )
    if BASELINE in names:
        lines += [
            "",
            f"{CURRENT} − {BASELINE}, paired within each round "
            "(median; min–max), µs per request:",
            "",
            "| endpoint | with the line | the line's cost (with − without) |",
            "|---|---|---|",
        ]
        for endpoint in ENDPOINTS:
            with_line = _paired(
                times[CURRENT, endpoint, True], times[BASELINE, endpoint, True]
            )
            line_cost = _paired(cost(CURRENT, endpoint), cost(BASELINE, endpoint))
            lines.append(
                f"| {endpoint} | {_summary(with_line)} | {_summary(line_cost)} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit, measured in the same rounds",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    from benchmarks.results import RESULTS, environment, load, publish

    checkouts = {CURRENT: ROOT}
    if args.baseline is not None:
        if not (args.baseline / "benchmarks" / "worker.py").exists():
            parser.error(f"{args.baseline} has no benchmarks/worker.py")
        checkouts[BASELINE] = args.baseline.resolve()
    start = load()
    result = measure(checkouts, args.pairs, args.batch)
    text = "\n".join(
        [
            "## The access line's share",
            "",
            environment("structlog", "orjson")
            + f" Load average at the start: {start}.",
            "",
            f"The microkit stack, one process per checkout, `ACCESS_LOG.ENABLED` "
            f"switched between batches of {args.batch} requests, {args.pairs} "
            "pairs; CPU time per request, medians over batches. The line is "
            "rendered as JSON and written to /dev/null through a "
            "`logging.FileHandler`.",
            "",
            *report(result, list(checkouts)),
        ]
    )
    if args.baseline is not None:
        git = ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"]
        commit = subprocess.check_output(git, text=True).strip()
        text += f"\n\n`{BASELINE}` is commit {commit} (`--baseline`).\n"
    publish("access-log", text + "\n", args.output or str(RESULTS))


if __name__ == "__main__":
    main()
