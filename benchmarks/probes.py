"""Cost of a readiness probe: fast checks, slow checks, and bursts of probes.

Measured in-process under WSGI, in a worker process per checkout (``--baseline``
adds another checkout's, driven in the same interleaved rounds):

- a fresh readiness round (``RESULT_TTL = 0``, the database and cache checks)
  against a hand-written sync view doing the same work (``django_ready``: a
  ``SELECT 1`` through the default connection, a cache set and get, a
  ``JsonResponse``) in the same worker, requests alternating: the ratio of the
  two medians per round, the µs of each, and Python calls per request of each
  counted in every thread of a worker of its own (cProfile in each thread: the
  pool's and the loop's work counts too), and with ``--callgrind N`` the
  instructions per request under valgrind's callgrind, every thread counted;
- one fresh readiness probe (``RESULT_TTL = 0``) with the default checks, the
  database and the cache (in-memory SQLite, local-memory cache), and one probe
  answered from a round still within ``RESULT_TTL``: what the probe machinery
  itself costs, in µs;
- one fresh probe with 1, 4 and 8 checks that each sleep 100 ms and count their
  runs, for django-microkit and for django-health-check's own view running the
  same checks: running the checks concurrently keeps it near one check;
- a burst of 100 probes within ``RESULT_TTL`` (1 s), one after the other and
  from 16 threads at once: how many times the checks really ran.

    python benchmarks/probes.py [--rounds 15] [--batch 200] [--repeat 5] [--output -]
    python benchmarks/probes.py --baseline ../microkit-base --output -
    python benchmarks/probes.py --callgrind 50 --output -   # + instructions
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place (for a worker, the root of the checkout it measures).
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = sys.argv[2] if sys.argv[1:2] == ["--worker"] else str(ROOT)

import argparse
import cProfile
import functools
import importlib
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.results import RESULTS, environment, load, publish

COUNTS = (1, 4, 8)
READY = "/health/ready"
#: ``benchmarks.benchapp.views.django_ready``, under ``ACCESS_LOG.HEALTH_PATHS``
#: as the probe is, so that neither writes an access line.
HAND_WRITTEN = "/health/django-ready"
#: Requests of each kind before a paired batch is timed: a check runs in the
#: request thread only after a streak of quick passes in the pool.
WARM = 20
#: Set in the environment of a worker that counts calls in every thread.
PROFILE_THREADS = "BENCH_PROFILE_THREADS"
BURST = 100
THREADS = 16
MINE = "django-microkit"
BASELINE = "baseline"

Get = Callable[[str], int]


# --- in a worker process -----------------------------------------------------------


def _setup() -> Get:
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


def _mount_hand_written() -> None:
    """Mount ``django_ready`` at :data:`HAND_WRITTEN` when the checkout measured
    (an older baseline) has no route there."""
    from django.conf import settings
    from django.urls import Resolver404, clear_url_caches, path, resolve

    try:
        resolve(HAND_WRITTEN)
    except Resolver404:
        from benchmarks.benchapp.views import django_ready

        urlconf = importlib.import_module(settings.ROOT_URLCONF)
        urlconf.urlpatterns.append(path(HAND_WRITTEN[1:], django_ready))
        clear_url_caches()


_PROFILES: list[cProfile.Profile] = []


def _profile_threads() -> cProfile.Profile:
    """Profile this thread and every thread started from now on (the health
    pool's, its loop's, asgiref's): a check's calls count wherever it runs.
    A new thread's first profile event starts its own profiler."""

    def start(*event: Any) -> None:
        profile = cProfile.Profile()
        _PROFILES.append(profile)
        profile.enable()

    threading.setprofile(start)
    start()
    return _PROFILES[0]


def _all_calls(main: cProfile.Profile) -> int:
    """Function calls so far in every profiled thread, this counting left out."""
    main.disable()
    total = sum(entry.callcount for p in list(_PROFILES) for entry in p.getstats())
    main.enable()
    return total


def _warm(get: Get) -> None:
    """:data:`WARM` requests of each kind, so that quick checks run in the
    request thread by the time the measured requests begin."""
    for _ in range(WARM):
        assert (get(READY), get(HAND_WRITTEN)) == (200, 200)


def _paired(get: Get, count: int) -> list[float]:
    """Median wall time (µs) of ``count`` fresh readiness probes and of as many
    requests to the hand-written view, alternating, the first of each pair
    swapped every time."""
    times: dict[str, list[float]] = {READY: [], HAND_WRITTEN: []}
    with _health(0, 0.0):
        _warm(get)
        for index in range(count):
            for path in (READY, HAND_WRITTEN)[:: 1 if index % 2 else -1]:
                start = time.perf_counter_ns()
                status = get(path)
                times[path].append((time.perf_counter_ns() - start) / 1000)
                assert status == 200, (path, status)
    return [statistics.median(times[READY]), statistics.median(times[HAND_WRITTEN])]


def _calls(get: Get, main: cProfile.Profile, count: int) -> list[float]:
    """Function calls per request, every thread counted, of a fresh readiness
    probe and of the hand-written view."""
    answer = []
    with _health(0, 0.0):
        _warm(get)
        for path in (READY, HAND_WRITTEN):
            before = _all_calls(main)
            for _ in range(count):
                get(path)
            answer.append((_all_calls(main) - before) / count)
    return answer


def _instructions(get: Get, count: int) -> None:
    """``count`` fresh readiness probes, then as many requests to the
    hand-written view, each kind inside a ``functools.reduce`` call of its own:
    the window callgrind dumps (:func:`_callgrind`)."""
    with _health(0, 0.0):
        _warm(get)
        for path in (READY, HAND_WRITTEN):
            functools.reduce(lambda _, __, path=path: get(path), range(count), 0)


def _health(sleeping: int, ttl: float) -> Any:
    """Settings whose readiness probe runs ``sleeping`` checks of 100 ms (none:
    the stack's database and cache checks), reused for ``ttl`` seconds."""
    from django.test import override_settings

    from benchmarks.stacks.microkit import MICROKIT

    health = {**MICROKIT["HEALTH"], "RESULT_TTL": ttl}
    if sleeping:
        health["READINESS_CHECKS"] = [
            {"check": "benchmarks.benchapp.checks.sleeping_check", "name": f"s-{i}"}
            for i in range(sleeping)
        ]
    return override_settings(MICROKIT={**MICROKIT, "HEALTH": health})


def _runs() -> int:
    from benchmarks.benchapp import checks

    return checks.runs


def _times(get: Get, path: str, sleeping: int, ttl: float, count: int) -> list[float]:
    """Wall time (µs) of ``count`` probes, after one to warm up."""
    times = []
    with _health(sleeping, ttl):
        assert get(path) == 200, path
        for _ in range(count):
            start = time.perf_counter_ns()
            status = get(path)
            times.append((time.perf_counter_ns() - start) / 1000)
            assert status == 200, (path, status)
    return times


def _burst(get: Get, path: str, threads: int) -> tuple[int, float]:
    """Check runs and wall time (ms) of BURST probes from ``threads`` threads."""
    with _health(4, 1.0):
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


def _serve() -> None:
    """Answer the driver's commands, one JSON line each way."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.stacks.probes"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    main = _profile_threads() if os.environ.get(PROFILE_THREADS) else None
    get = _setup()
    _mount_hand_written()
    for line in sys.stdin:
        command = json.loads(line)
        if command.pop("about", False):
            answer: Any = environment()
        elif command.pop("burst", False):
            answer = _burst(get, **command)
        elif command.pop("paired", False):
            answer = _paired(get, **command)
        elif command.pop("instructions", False):
            answer = _instructions(get, **command)
        elif command.pop("calls", False):
            assert main is not None, f"start the worker with {PROFILE_THREADS}=1"
            answer = _calls(get, main, **command)
        else:
            answer = _times(get, **command)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


# --- the driver ----------------------------------------------------------------------


class Worker:
    def __init__(
        self, root: Path, *, profile_threads: bool = False, under: Sequence[str] = ()
    ) -> None:
        env = {**os.environ, PROFILE_THREADS: "1"} if profile_threads else None
        script = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root)]
        self.process = subprocess.Popen(
            [*under, *script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env=env,
        )

    def ask(self, **command: Any) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark worker stopped")
        return json.loads(line)

    def stop(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=300)


def _callgrind(root: Path, count: int) -> tuple[float, float]:
    """Instructions per request of the fresh probe and of the hand-written
    view, in every thread: callgrind dumps its counters (all threads' together)
    on entering and on leaving each ``functools.reduce`` call, so each dump made
    on leaving one holds exactly one kind's requests. (``--toggle-collect``
    would count only the thread that called it, not the pool's.)"""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        worker = Worker(
            root,
            under=[
                "valgrind",
                "-q",
                "--tool=callgrind",
                "--dump-before=functools_reduce",
                "--dump-after=functools_reduce",
                f"--callgrind-out-file={out}",
            ],
        )
        try:
            worker.ask(instructions=True, count=count)
        finally:
            worker.stop()
        windows: dict[int, int] = {}
        for dump in Path(directory).glob("callgrind.out.*"):
            fields = dict(
                line.split(": ", 1)
                for line in dump.read_text().splitlines()
                if line.startswith(("part: ", "totals: ", "desc: Trigger: "))
            )
            if fields.get("desc") == "Trigger: --dump-after=functools_reduce":
                windows[int(fields["part"])] = int(fields["totals"])
    probe, view = (windows[part] for part in sorted(windows))
    return probe / count, view / count


def _rounds(
    workers: dict[str, Worker], rounds: int, **command: Any
) -> dict[str, list[Any]]:
    """Each worker's answer to ``command`` in every round, asked in a fresh
    random order each round so that the machine's drift falls on every worker
    alike."""
    answers: dict[str, list[Any]] = {name: [] for name in workers}
    for _ in range(rounds):
        order = list(workers.items())
        random.shuffle(order)
        for name, worker in order:
            answers[name].append(worker.ask(**command))
    return answers


def _interleaved(
    workers: dict[str, Worker], rounds: int, **command: Any
) -> dict[str, list[float]]:
    """Each worker's per-round medians of ``command`` (:func:`_rounds`)."""
    answers = _rounds(workers, rounds, **command)
    return {
        name: [statistics.median(times) for times in answers[name]] for name in answers
    }


def _cell(values: list[float], digits: int = 1) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _against_hand_written(
    workers: dict[str, Worker],
    roots: dict[str, Path],
    rounds: int,
    batch: int,
    callgrind: int,
) -> list[str]:
    """The fresh round over the hand-written view, paired within each round."""
    pairs: dict[str, list[list[float]]] = _rounds(
        workers, rounds, paired=True, count=batch
    )
    lines = [
        "Fresh readiness round (`RESULT_TTL = 0`, the database and cache checks) "
        "against a hand-written sync view doing the same work "
        "(`benchapp.views.django_ready`: `SELECT 1` through the default "
        "connection, a cache set and get, a `JsonResponse`), both through the "
        "same middleware in the same worker, neither writing an access line: "
        f"{rounds} interleaved rounds of {batch} pairs of requests, after {WARM} "
        "of each (quick checks run in the request thread only after a streak "
        "of quick passes). The ratio is the probe's median over the view's "
        "within each round (min / median / max over rounds); µs are medians of "
        "the rounds' medians; Python calls per request are counted in every "
        "thread of a worker of its own (cProfile in each: the pool's and the "
        "loop's work included), and do not move with the machine's load:",
        "",
        "| checkout | probe / view | probe µs | view µs | probe calls | view calls |",
        "|---|---|---|---|---|---|",
    ]
    for name, root in roots.items():
        counter = Worker(root, profile_threads=True)
        try:
            probe_calls, view_calls = counter.ask(calls=True, count=batch)
        finally:
            counter.stop()
        ratios = [probe / view for probe, view in pairs[name]]
        probe_us = statistics.median(probe for probe, _ in pairs[name])
        view_us = statistics.median(view for _, view in pairs[name])
        low, mid, high = min(ratios), statistics.median(ratios), max(ratios)
        lines.append(
            f"| {name} | {low:.2f} / {mid:.2f} / {high:.2f} | {probe_us:.0f} | "
            f"{view_us:.0f} | {probe_calls:.0f} | {view_calls:.0f} |"
        )
    if callgrind:
        lines += [
            "",
            f"Instructions per request (valgrind's callgrind, {callgrind} "
            "requests of each after the same warm-up, every thread counted):",
            "",
            "| checkout | probe | view | probe / view |",
            "|---|---|---|---|",
        ]
        for name, root in roots.items():
            probe, view = _callgrind(root, callgrind)
            lines.append(
                f"| {name} | {probe:,.0f} | {view:,.0f} | {probe / view:.2f} |"
            )
    return [*lines, ""]


def measure(
    workers: dict[str, Worker],
    roots: dict[str, Path],
    rounds: int,
    batch: int,
    repeat: int,
    callgrind: int = 0,
) -> list[str]:
    names = list(workers)
    head = "| " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(names)
    lines = [
        *_against_hand_written(workers, roots, rounds, batch, callgrind),
        "Fresh readiness probe (`RESULT_TTL = 0`) with the database and cache "
        "checks (in-memory SQLite, local-memory cache), and a probe answered from "
        f"a round within `RESULT_TTL`: wall time in µs, median of {rounds} "
        f"interleaved rounds of {batch} probes (min–max of the rounds' medians):",
        "",
        "| probe " + head,
        rule,
    ]
    for label, ttl in (("fresh round", 0.0), ("reused round", 1.0)):
        fast = _interleaved(
            workers, rounds, path="/health/ready", sleeping=0, ttl=ttl, count=batch
        )
        lines.append(f"| {label} | " + " | ".join(_cell(fast[n]) for n in names) + " |")
    lines += [
        "",
        "Each check sleeps 100 ms. django-microkit runs a probe's checks "
        "concurrently in a thread pool that lives for the process; "
        "django-health-check's view (`HealthCheckView`, async) runs sync checks in "
        "its event loop's default executor, one loop per request under WSGI.",
        "",
        f"Fresh readiness probe (`RESULT_TTL = 0`), wall time in ms, median of "
        f"{repeat} (min–max):",
        "",
        "| checks " + head + " django-health-check view |",
        rule + "---|",
    ]
    for count in COUNTS:
        slow = _interleaved(
            workers, repeat, path="/health/ready", sleeping=count, ttl=0, count=1
        )
        theirs = workers[MINE].ask(
            path=f"/health/hc-{count}", sleeping=count, ttl=0, count=repeat
        )
        cells = [_cell([t / 1000 for t in slow[n]]) for n in names]
        cells.append(_cell([t / 1000 for t in theirs]))
        lines.append(f"| {count} × 100 ms | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"A burst of {BURST} readiness probes with 4 checks of 100 ms, "
        "`RESULT_TTL = 1` (the default): check runs (each of the 4 checks counts "
        "one) and wall time of the whole burst in ms:",
        "",
        "| probes | "
        + " | ".join(f"{n} runs | ms" for n in names)
        + " | django-health-check view runs | ms |",
        "|---|" + "---|---|" * (len(names) + 1),
    ]
    for threads in (1, THREADS):
        cells = []
        for worker in workers.values():
            runs, ms = worker.ask(burst=True, path="/health/ready", threads=threads)
            cells.append(f"{runs} | {ms:.0f}")
        if threads == 1:
            cells.append("not run (100 rounds: about 10 s) | —")
        else:
            runs, ms = workers[MINE].ask(
                burst=True, path="/health/hc-4", threads=threads
            )
            cells.append(f"{runs} | {ms:.0f}")
        label = "one after another" if threads == 1 else f"from {threads} threads"
        lines.append(f"| {BURST} {label} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        _serve()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit (git worktree add DIR COMMIT), "
        "measured beside this one as 'baseline', for before/after from one run",
    )
    parser.add_argument(
        "--callgrind",
        type=int,
        default=0,
        metavar="N",
        help="also count instructions per request of N requests of each kind "
        "under valgrind's callgrind (about a minute per checkout for 50)",
    )
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    start_load = load()
    roots = {MINE: ROOT}
    if args.baseline is not None:
        roots[BASELINE] = args.baseline.resolve()
    workers: dict[str, Worker] = {}
    try:
        for name, root in roots.items():
            workers[name] = Worker(root)
        lines = measure(
            workers, roots, args.rounds, args.batch, args.repeat, args.callgrind
        )
        if BASELINE in workers:
            about = workers[BASELINE].ask(about=True)
            lines += ["", f"`{BASELINE}`, measured in the same rounds: {about}"]
    finally:
        for worker in workers.values():
            worker.stop()
    header = [
        "## Health probes: probe cost, slow checks and bursts",
        "",
        environment("django-health-check")
        + f" Load average at the start: {start_load}.",
        "",
    ]
    publish("probes", "\n".join(header + lines) + "\n", args.output)


if __name__ == "__main__":
    main()
