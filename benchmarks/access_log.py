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

import json
import random
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

from benchmarks import paired
from benchmarks.paired import BASELINE, CURRENT

ENDPOINTS = ("list", "not_found", "invalid")


def serve(root: Path) -> None:
    """Answer the runner's commands, one JSON line each, measuring the
    microkit stack of the checkout at ``root``."""
    call = paired.stack(root)
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
                    answer[str(enabled)] = paired.batch(call, endpoint, count)
        elif command["do"] == "calls":
            for enabled in (True, False):
                with switch[enabled]:
                    answer[str(enabled)] = paired.calls(lambda e=endpoint: call(e))
            answer["line"] = paired.calls(line)
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


def measure(roots: dict[str, Path], pairs: int, size: int) -> dict[str, Any]:
    running = paired.workers(str(Path(__file__).resolve()), roots)
    try:
        times = paired.rounds(running, ENDPOINTS, pairs, size)
        counts = paired.call_counts(running, ENDPOINTS)
        alone: dict[str, list[float]] = {}
        for _ in range(5):
            random.shuffle(running)
            for worker in running:
                answer = worker.ask(do="alone")
                alone.setdefault(worker.name, []).append(answer["alone"])
    finally:
        for worker in running:
            worker.stop()
    return {"times": times, "calls": counts, "alone": alone}


def report(result: dict[str, Any], names: list[str]) -> list[str]:
    times, counts, alone = result["times"], result["calls"], result["alone"]

    def cost(name: str, endpoint: str) -> list[float]:
        return paired.differences(
            times[name, endpoint, "True"], times[name, endpoint, "False"]
        )

    lines = [
        "| checkout | endpoint | with the line, CPU µs | without, CPU µs "
        "| difference per pair, µs (median; min–max) | share of the request "
        "| Python calls per request, with / without |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for endpoint in ENDPOINTS:
            on = statistics.median(times[name, endpoint, "True"])
            off = statistics.median(times[name, endpoint, "False"])
            count = counts[name, endpoint]
            lines.append(
                f"| {name} | {endpoint} | {on:.1f} | {off:.1f} "
                f"| {paired.summary(cost(name, endpoint))} "
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
            f"{counts[name, ENDPOINTS[0]]['line']:.0f} calls."
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
            with_line = paired.differences(
                times[CURRENT, endpoint, "True"], times[BASELINE, endpoint, "True"]
            )
            line_cost = paired.differences(
                cost(CURRENT, endpoint), cost(BASELINE, endpoint)
            )
            lines.append(
                f"| {endpoint} | {paired.summary(with_line)} "
                f"| {paired.summary(line_cost)} |"
            )
    return lines


def main() -> None:
    parser, args = paired.arguments(__doc__ or "")
    if args.serve is not None:
        serve(args.serve)
        return
    from benchmarks.results import RESULTS, environment, load, publish

    roots = paired.checkouts(ROOT, parser, args.baseline)
    start = load()
    result = measure(roots, args.pairs, args.batch)
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
            *report(result, list(roots)),
        ]
    )
    text += paired.baseline_note(args.baseline)
    publish("access-log", text + "\n", args.output or str(RESULTS))


if __name__ == "__main__":
    main()
