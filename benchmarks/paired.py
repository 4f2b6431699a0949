"""The harness of the scripts that switch one setting within one process.

``access_log.py`` and ``tracing.py`` measure a setting's cost the same way: the
microkit stack of a checkout in a worker process of its own, the setting
switched between short batches of requests, CPU time per request, differences
taken per pair of batches; another checkout (``--baseline DIR``) in its own
worker in the same rounds. This module holds what they share: the worker's
start, its timings, the runner's arguments and the figures' summaries.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CURRENT, BASELINE = "current", "baseline"


def batch(call: Callable[[str], int], endpoint: str, count: int) -> float:
    """CPU time of this process per request, µs: time the process spent
    waiting for a core, on a busy machine, is left out."""
    start = time.process_time_ns()
    for _ in range(count):
        call(endpoint)
    return (time.process_time_ns() - start) / count / 1000


def calls(function: Callable[[], object], count: int = 50) -> float:
    """Python function calls per call of ``function`` (cProfile)."""

    def repeated() -> None:
        for _ in range(count):
            function()

    profile = cProfile.Profile()
    profile.runcall(repeated)
    total: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return (total - 1) / count  # without repeated() itself


def stack(root: Path) -> Callable[[str], int]:
    """In a worker: the microkit stack with the django-microkit of the
    checkout at ``root``, set up, as a function answering one request to an
    endpoint. (The stacks' settings and views are this package's, imported
    already: a baseline differs in its django-microkit.)

    ``benchmarks.worker`` puts this checkout's root first on ``sys.path`` as
    it loads: ``BENCH_LIBRARY`` puts ``root`` before it, or a baseline would
    import this checkout's django-microkit."""
    sys.path[0] = str(root)
    os.environ["BENCH_LIBRARY"] = str(root)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.stacks.microkit"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    from benchmarks.worker import _setup

    return _setup()


def workers(
    script: str,
    checkouts: dict[str, Path],
    *extra: str,
    prefix: Sequence[str] = (),
) -> list[Any]:
    """One worker per checkout: ``script --serve ROOT`` (and ``extra`` for the
    baseline's), answering JSON commands (``benchmarks.run.Worker``); run by
    ``prefix`` when given (``valgrind …``)."""
    from benchmarks.run import Worker

    return [
        Worker(
            name,
            subprocess.Popen(
                [*prefix, sys.executable, script, "--serve", str(root)]
                + (list(extra) if name == BASELINE else []),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
            ),
        )
        for name, root in checkouts.items()
    ]


def arguments(
    description: str,
    options: Callable[[argparse.ArgumentParser], object] | None = None,
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The runner's options: ``--pairs``, ``--batch``, ``--baseline``,
    ``--output``, the worker's hidden ``--serve``, and a script's own
    (``options`` adds them to the parser)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    if options is not None:
        options(parser)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit, measured in the same rounds",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None)
    return parser, parser.parse_args()


def checkouts(
    root: Path, parser: argparse.ArgumentParser, baseline: Path | None
) -> dict[str, Path]:
    """This checkout, and the baseline's when one is given (and has workers)."""
    found = {CURRENT: root}
    if baseline is not None:
        if not (baseline / "benchmarks" / "worker.py").exists():
            parser.error(f"{baseline} has no benchmarks/worker.py")
        found[BASELINE] = baseline.resolve()
    return found


def baseline_note(baseline: Path | None) -> str:
    """The paragraph naming the baseline's commit, or nothing."""
    if baseline is None:
        return ""
    git = ["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"]
    commit = subprocess.check_output(git, text=True).strip()
    return f"\n\n`{BASELINE}` is commit {commit} (`--baseline`).\n"


def differences(values: list[float], others: list[float]) -> list[float]:
    """``values`` minus ``others``, pair by pair (one round each)."""
    return [a - b for a, b in zip(values, others, strict=True)]


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


Times = dict[tuple[str, str, str], list[float]]


def rounds(
    running: list[Any], endpoints: tuple[str, ...], pairs: int, size: int
) -> Times:
    """Warm every worker up, then ``pairs`` rounds: for each endpoint, every
    worker in a fresh random order answers one ``pair`` of batches of
    ``size`` requests. The times, by (worker, endpoint, state answered)."""
    times: Times = {}
    for worker in running:
        for endpoint in endpoints:
            worker.ask(do="pair", endpoint=endpoint, count=size)
    for _ in range(pairs):
        for endpoint in endpoints:
            random.shuffle(running)
            for worker in running:
                answer = worker.ask(do="pair", endpoint=endpoint, count=size)
                for state, value in answer.items():
                    times.setdefault((worker.name, endpoint, state), []).append(value)
    return times


def call_counts(
    running: list[Any], endpoints: tuple[str, ...]
) -> dict[tuple[str, str], dict[str, float]]:
    """Each worker's ``calls`` answer, by (worker, endpoint)."""
    return {
        (worker.name, endpoint): worker.ask(do="calls", endpoint=endpoint)
        for worker in running
        for endpoint in endpoints
    }
