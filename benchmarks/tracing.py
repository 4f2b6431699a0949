"""What tracing costs per request: the microkit stack with ``TRACING.ENABLED``
on (the OpenTelemetry SDK, spans handed to an in-memory exporter as each ends)
and off, alternated in one process.

As in ``access_log.py``, the same process switches the setting between short
batches and the difference is taken per pair of batches; times are CPU time
of the process per request. ``--baseline DIR`` (a checkout of another commit,
``git worktree add DIR COMMIT``) measures that checkout's stack, which has
tracing off or no tracing at all, in its own process in the same rounds: the
paired difference (current off − baseline) is what this checkout adds with
tracing off.

    python benchmarks/tracing.py [--pairs 100] [--batch 30] [--output -]
    python benchmarks/tracing.py --baseline /tmp/base --output -
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in access_log.py: the repository root first on sys.path, not benchmarks/.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import json
import statistics
from typing import Any

from benchmarks import paired
from benchmarks.paired import BASELINE, CURRENT

ENDPOINTS = ("list", "not_found", "invalid")


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
    states = (False,) if baseline else (True, False)
    for command in map(json.loads, sys.stdin):
        endpoint, count = command.get("endpoint", ""), command.get("count", 0)
        answer: dict[str, Any] = {}
        if command["do"] == "alone":
            with switch[True]:
                sys.stdout.write(json.dumps(_alone()) + "\n")
                sys.stdout.flush()
            continue
        for enabled in states:
            # A baseline keeps its own settings: TRACING may not exist there.
            measured = override_settings() if baseline else switch[enabled]
            with measured:
                # Untimed: the first request after a settings change builds
                # the derived values again (the TracerProvider among them).
                call(endpoint)
                if command["do"] == "pair":
                    answer[str(enabled)] = paired.batch(call, endpoint, count)
                else:
                    answer[str(enabled)] = paired.calls(lambda e=endpoint: call(e))
                _empty_exporter()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _alone() -> dict[str, float]:
    """The server span alone, in µs (best of 5 × 2,000, wall time): started,
    named and ended for a finished request as the middleware does, and the
    SDK's own floor, a span with the same attributes made directly."""
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
        answer[name] = min(timeit.repeat(function, number=2000, repeat=5)) / 2000 * 1e6
        _empty_exporter()
    return answer


def measure(roots: dict[str, Path], pairs: int, size: int) -> dict[str, Any]:
    running = paired.workers(str(Path(__file__).resolve()), roots, "--as-baseline")
    try:
        times = paired.rounds(running, ENDPOINTS, pairs, size)
        counts = paired.call_counts(running, ENDPOINTS)
        (current,) = [worker for worker in running if worker.name == CURRENT]
        alone = [current.ask(do="alone") for _ in range(5)]
    finally:
        for worker in running:
            worker.stop()
    return {"times": times, "calls": counts, "alone": alone}


def report(result: dict[str, Any], names: list[str]) -> list[str]:
    times, counts = result["times"], result["calls"]
    lines = [
        "| endpoint | tracing on, CPU µs | off, CPU µs "
        "| added per request, µs (median; min–max over pairs) "
        "| Python calls per request, on / off |",
        "|---|---|---|---|---|",
    ]
    for endpoint in ENDPOINTS:
        on, off = times[CURRENT, endpoint, "True"], times[CURRENT, endpoint, "False"]
        count = counts[CURRENT, endpoint]
        lines.append(
            f"| {endpoint} | {statistics.median(on):.1f} "
            f"| {statistics.median(off):.1f} "
            f"| {paired.summary(paired.differences(on, off))} "
            f"| {count['True']:.0f} / {count['False']:.0f} |"
        )
    alone = result["alone"]

    def median(key: str) -> float:
        return statistics.median(run[key] for run in alone)

    lines += [
        "",
        "The server span alone (best of 5 × 2,000, wall time, the median of 5 "
        "such runs): started as the child of a new trace, named after its "
        f"route and ended as the middleware does, {median('ours'):.1f} µs "
        f"(of which `TraceContext.new()`, made with tracing off too, "
        f"{median('new'):.1f} µs); the SDK's own span with the same name and "
        f"attributes, made directly, {median('sdk'):.1f} µs.",
    ]
    if BASELINE in names:
        lines += [
            "",
            f"Tracing off: {CURRENT} − {BASELINE}, paired within each round "
            "(median; min–max), µs per request, and Python calls per request:",
            "",
            f"| endpoint | {CURRENT} off − {BASELINE} | calls, {CURRENT} off / "
            f"{BASELINE} |",
            "|---|---|---|",
        ]
        for endpoint in ENDPOINTS:
            difference = paired.differences(
                times[CURRENT, endpoint, "False"], times[BASELINE, endpoint, "False"]
            )
            lines.append(
                f"| {endpoint} | {paired.summary(difference)} "
                f"| {counts[CURRENT, endpoint]['False']:.0f} / "
                f"{counts[BASELINE, endpoint]['False']:.0f} |"
            )
    return lines


def main() -> None:
    parser, args = paired.arguments(__doc__ or "")
    if args.serve is not None:
        serve(args.serve, args.as_baseline)
        return
    from benchmarks.results import RESULTS, environment, load, publish

    roots = paired.checkouts(ROOT, parser, args.baseline)
    start = load()
    result = measure(roots, args.pairs, args.batch)
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
