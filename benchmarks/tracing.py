"""What tracing costs per request: the microkit stack with ``TRACING.ENABLED``
on (the OpenTelemetry SDK, spans handed to an in-memory exporter as each ends)
and off, alternated in one process.

As in ``access_log.py``, the same process switches the setting between short
batches and the difference is taken per pair of batches; times are CPU time
of the process per request. ``--baseline DIR`` (a checkout of another commit,
``git worktree add DIR COMMIT``) measures that checkout's stack, which has
tracing off or no tracing at all, in its own process in the same rounds: the
paired difference (current off − baseline) is what this checkout adds with
tracing off. A baseline that has tracing is measured on and off as well, so
that before and after come from the same rounds.

Then, in processes of their own run by valgrind's callgrind, the instructions
each request takes with tracing on and off (and the server span alone), which
the machine's load does not move: callgrind counts only inside a
``functools.reduce(...)`` call wrapping the measured loop and writes its
counters out as the call returns. Converted to µs at the instructions per µs of
the tracing-off request in the same run (its instructions over its CPU µs),
they judge the budget whatever the load. ``--instructions 0`` (or no valgrind)
leaves them out.

    python benchmarks/tracing.py [--pairs 100] [--batch 30] [--instructions 30]
                                 [--output -]
    python benchmarks/tracing.py --baseline /tmp/base --output -
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in access_log.py: the repository root first on sys.path, not benchmarks/.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import argparse
import functools
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

from benchmarks import paired
from benchmarks.paired import BASELINE, CURRENT

ENDPOINTS = ("list", "not_found", "invalid")

# Instructions counted only inside functools.reduce(), its counters written to
# a file of their own each time it returns; the same hash seed in every run.
CALLGRIND = (
    "env",
    "PYTHONHASHSEED=0",
    "valgrind",
    "-q",
    "--tool=callgrind",
    "--collect-atstart=no",
    "--toggle-collect=functools_reduce",
    "--dump-after=functools_reduce",
)


def memory_processor() -> Any:
    """The span processor measured: each span handed, as it ends, to the SDK's
    in-memory exporter (the cheapest exporter: what remains is the SDK's and
    django-microkit's own work)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    global _exporter
    _exporter = InMemorySpanExporter()
    return SimpleSpanProcessor(_exporter)


_exporter: Any = None


def _empty_exporter() -> None:
    """Drop the batch's spans (untimed), as an exporter sends them away: kept,
    thousands of spans would make every garbage collection slower."""
    if _exporter is not None:
        _exporter.clear()


def serve(root: Path, baseline: bool) -> None:
    """Answer the runner's commands, one JSON line each, measuring the
    microkit stack of the checkout at ``root``: tracing on and off, or, for
    a baseline, as it is."""
    call = paired.stack(root)
    from django.conf import settings
    from django.test import override_settings

    tracing = {
        # This script runs as __main__ in the worker process.
        "SPAN_PROCESSORS": [f"{__name__}.memory_processor"],
    }
    switch = {
        enabled: override_settings(
            MICROKIT={**settings.MICROKIT, "TRACING": {**tracing, "ENABLED": enabled}}
        )
        for enabled in (True, False)
    }
    # A baseline without tracing keeps its own settings: TRACING may not exist.
    traced = not baseline or find_spec("django_microkit.tracing.otel") is not None
    states = (True, False) if traced else (False,)
    for command in map(json.loads, sys.stdin):
        endpoint, count = command.get("endpoint", ""), command.get("count", 0)
        dumps = command.get("dumps")
        answer: dict[str, Any] = {}
        if command["do"] == "alone":
            with switch[True] if traced else override_settings():
                answer = _alone(dumps) if traced else {}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
            continue
        for enabled in states:
            with switch[enabled] if traced else override_settings():
                # Untimed: the first request after a settings change builds
                # the derived values again (the TracerProvider among them).
                call(endpoint)
                if command["do"] == "pair":
                    answer[str(enabled)] = paired.batch(call, endpoint, count)
                elif command["do"] == "instructions":
                    answer[str(enabled)] = _instructions(
                        lambda e=endpoint: call(e), count, dumps
                    )
                else:
                    answer[str(enabled)] = paired.calls(lambda e=endpoint: call(e))
                _empty_exporter()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


# How many callgrind dumps this worker has read (callgrind.out.PID.1, .2, …).
_dumps_read = 0


def _instructions(function: Callable[[], object], count: int, dumps: str) -> float:
    """Instructions per call of ``function`` over ``count`` calls, in a worker
    run by :data:`CALLGRIND` writing to ``dumps``: the loop inside one
    ``functools.reduce`` call, less the loop's own instructions (the same loop
    calling nothing)."""

    def counted(run: Callable[[], object]) -> int:
        global _dumps_read
        functools.reduce(lambda _, __: run(), range(count), None)
        _dumps_read += 1
        path = Path(f"{dumps}.{os.getpid()}.{_dumps_read}")
        next_dump = Path(f"{dumps}.{os.getpid()}.{_dumps_read + 1}")
        assert not next_dump.exists(), "functools.reduce ran inside the loop"
        lines = path.read_text().splitlines()
        return next(
            int(line.split()[1]) for line in lines if line.startswith("totals:")
        )

    function()  # warm: caches filled, as in the timed batches
    return (counted(function) - counted(lambda: None)) / count


def _alone(dumps: str | None = None) -> dict[str, float]:
    """The server span alone, in µs (best of 5 × 2,000, wall time), or in
    instructions per span when run by callgrind (``dumps``): started, named
    and ended for a finished request as the middleware does, and the SDK's
    own floor, a span with the same attributes made directly."""
    import timeit

    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from django_microkit.request_id import TraceContext
    from django_microkit.tracing import get_tracing

    tracing = get_tracing()
    assert tracing is not None
    request = RequestFactory().get("/items/")
    request.resolver_match = resolve("/items/")
    response = HttpResponse()
    method = "GET"
    attributes = tracing.server_attributes(request, method)
    tracer = tracing.tracer

    def ours() -> None:
        served, _ = tracing.start_server_span(request, TraceContext.new())
        served.finish(request, response)
        served.end()

    def sdk() -> None:
        span = tracer.start_span(method, attributes=attributes)
        span.update_name("GET /items/")
        span.set_attributes({"http.route": "/items/", "http.response.status_code": 200})
        span.end()

    def new_trace() -> None:
        TraceContext.new()

    answer = {}
    for name, function in (("ours", ours), ("sdk", sdk), ("new", new_trace)):
        if dumps is None:
            best = min(timeit.repeat(function, number=2000, repeat=5))
            answer[name] = best / 2000 * 1e6
        else:
            answer[name] = _instructions(function, 500, dumps)
        _empty_exporter()
    return answer


SCRIPT = str(Path(__file__).resolve())


def measure(
    roots: dict[str, Path], pairs: int, size: int, instructions: int
) -> dict[str, Any]:
    running = paired.workers(SCRIPT, roots, "--as-baseline")
    try:
        times = paired.rounds(running, ENDPOINTS, pairs, size)
        counts = paired.call_counts(running, ENDPOINTS)
        alone = {
            worker.name: [worker.ask(do="alone") for _ in range(5)]
            for worker in running
        }
    finally:
        for worker in running:
            worker.stop()
    result = {
        "times": times,
        "calls": counts,
        # The checkouts that have tracing (a baseline may not).
        "alone": {name: runs for name, runs in alone.items() if runs[0]},
    }
    if instructions and shutil.which("valgrind"):
        result["instructions"] = count_instructions(roots, instructions)
    return result


def count_instructions(roots: dict[str, Path], count: int) -> dict[str, Any]:
    """Instructions per request on and off, and per server span alone, by
    (checkout, endpoint or ``"alone"``): each checkout's worker run by
    callgrind, ``count`` requests per figure."""
    with tempfile.TemporaryDirectory() as directory:
        dumps = f"{directory}/callgrind.out"
        prefix = (*CALLGRIND, f"--callgrind-out-file={dumps}.%p")
        running = paired.workers(SCRIPT, roots, "--as-baseline", prefix=prefix)
        try:
            found: dict[Any, Any] = {}
            for worker in running:
                for endpoint in ENDPOINTS:
                    found[worker.name, endpoint] = worker.ask(
                        do="instructions", endpoint=endpoint, count=count, dumps=dumps
                    )
                found[worker.name, "alone"] = worker.ask(do="alone", dumps=dumps)
        finally:
            for worker in running:
                worker.stop()
    return found


def report(result: dict[str, Any], names: list[str]) -> list[str]:
    times, counts, alone = result["times"], result["calls"], result["alone"]
    traced = [name for name in names if name in alone]
    lines = [
        "| checkout | endpoint | tracing on, CPU µs | off, CPU µs "
        "| added per request, µs (median; min–max over pairs) "
        "| Python calls per request, on / off |",
        "|---|---|---|---|---|---|",
    ]
    for name in traced:
        for endpoint in ENDPOINTS:
            on, off = times[name, endpoint, "True"], times[name, endpoint, "False"]
            count = counts[name, endpoint]
            lines.append(
                f"| {name} | {endpoint} | {statistics.median(on):.1f} "
                f"| {statistics.median(off):.1f} "
                f"| {paired.summary(paired.differences(on, off))} "
                f"| {count['True']:.0f} / {count['False']:.0f} |"
            )
    for name in traced:

        def median(key: str, runs: list[dict[str, float]] = alone[name]) -> float:
            return statistics.median(run[key] for run in runs)

        lines += [
            "",
            f"The server span alone, {name} (best of 5 × 2,000, wall time, the "
            "median of 5 such runs): started as the child of a new trace, named "
            f"after its route and ended as the middleware does, {median('ours'):.1f}"
            " µs (of which `TraceContext.new()`, made with tracing off too, "
            f"{median('new'):.1f} µs); the SDK's own span with the same name and "
            f"attributes, made directly, {median('sdk'):.1f} µs.",
        ]
    if "instructions" in result:
        lines += instructions_report(result, traced)
    if BASELINE in names:
        on = [f"{CURRENT} on − {BASELINE} on"] if BASELINE in traced else []
        lines += [
            "",
            f"{CURRENT} − {BASELINE}, paired within each round (median; min–max), "
            "µs per request, and Python calls per request, tracing off:",
            "",
            " | ".join(
                [
                    "| endpoint",
                    f"{CURRENT} off − {BASELINE} off",
                    *on,
                    f"calls, {CURRENT} off / {BASELINE} off |",
                ]
            ),
            "|---|---|---|" + "---|" * len(on),
        ]
        for endpoint in ENDPOINTS:
            cells = [
                paired.summary(
                    paired.differences(
                        times[CURRENT, endpoint, state],
                        times[BASELINE, endpoint, state],
                    )
                )
                for state in ("False", "True")[: 1 + len(on)]
            ]
            lines.append(
                f"| {endpoint} | {' | '.join(cells)} "
                f"| {counts[CURRENT, endpoint]['False']:.0f} / "
                f"{counts[BASELINE, endpoint]['False']:.0f} |"
            )
    return lines


def instructions_report(result: dict[str, Any], traced: list[str]) -> list[str]:
    """Instructions per request (callgrind), and the µs they stand for at the
    rate of the tracing-off request measured in the same run."""
    found, times = result["instructions"], result["times"]
    lines = [
        "",
        "Instructions per request, counted by callgrind (each checkout's worker "
        "run by valgrind, the same requests in a loop inside one "
        "`functools.reduce` call, the loop's own instructions taken off): the "
        "machine's load does not move them. They are converted to µs at the "
        "instructions per µs of the same checkout's tracing-off request: its "
        "instructions over its median CPU µs in the timed rounds above.",
        "",
        "| checkout | endpoint | instructions, on | off | added "
        "| instructions per µs, off | added, µs at that rate |",
        "|---|---|---|---|---|---|---|",
    ]
    rates: dict[str, list[float]] = {}
    for name in traced:
        for endpoint in ENDPOINTS:
            counted = found[name, endpoint]
            on, off = counted["True"], counted["False"]
            rate = off / statistics.median(times[name, endpoint, "False"])
            rates.setdefault(name, []).append(rate)
            lines.append(
                f"| {name} | {endpoint} | {on:,.0f} | {off:,.0f} | {on - off:+,.0f} "
                f"| {rate:,.0f} | {(on - off) / rate:+.1f} |"
            )
    for name in traced:
        span = found[name, "alone"]
        rate = statistics.median(rates[name])
        added = span["ours"] - span["sdk"]
        lines += [
            "",
            f"The server span alone, {name}, in instructions: ours "
            f"{span['ours']:,.0f} (`TraceContext.new()` {span['new']:,.0f}), the "
            f"SDK's own span {span['sdk']:,.0f}: django-microkit adds "
            f"{added:+,.0f}, {added / rate:+.1f}"
            f" µs at {rate:,.0f} instructions per µs (the median of the endpoints'"
            " rates); the whole span stands for "
            f"{span['ours'] / rate:.1f} µs.",
        ]
    return lines


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instructions",
        type=int,
        default=30,
        metavar="N",
        help="requests per callgrind figure (0: no instruction counts)",
    )


def main() -> None:
    parser, args = paired.arguments(__doc__ or "", options)
    if args.serve is not None:
        serve(args.serve, args.as_baseline)
        return
    from benchmarks.results import RESULTS, environment, load, publish

    roots = paired.checkouts(ROOT, parser, args.baseline)
    start = load()
    result = measure(roots, args.pairs, args.batch, args.instructions)
    text = "\n".join(
        [
            "## Tracing's cost",
            "",
            environment("opentelemetry-sdk", "structlog", "orjson")
            + f" Load average at the start: {start}.",
            "",
            "The microkit stack in one process, `TRACING.ENABLED` switched "
            f"between batches of {args.batch} requests, {args.pairs} pairs; CPU "
            "time per request, medians over batches. On: a server span per "
            "request through the OpenTelemetry SDK (default sampler, "
            "`parentbased_always_on`: every span recorded), handed to the SDK's "
            "`InMemorySpanExporter` by a `SimpleSpanProcessor` as it ends; log "
            "lines carry `span_id`.",
            "",
            *report(result, list(roots)),
        ]
    )
    text += paired.baseline_note(args.baseline)
    publish("tracing", text + "\n", args.output or str(RESULTS))


if __name__ == "__main__":
    main()
