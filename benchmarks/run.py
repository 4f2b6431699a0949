"""Per-request cost of django-microkit against bare Django, bare DRF and the peer stack.

Each stack runs in its own worker process (Django settings are process-global);
this runner drives them in interleaved rounds, in a fresh random order each
round, so that drift of a shared, noisy machine falls on every stack alike.
Ratios are taken within a round, then summarised over rounds. Beside wall time,
each batch's CPU time (``time.process_time``) is recorded: it is less disturbed
by other jobs taking the CPU away. Python function calls per request (cProfile)
are the noise-free figure.

    python benchmarks/run.py                  # all stacks, all endpoints
    python benchmarks/run.py --rounds 5 --batch 50 --output -
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import random
import statistics
import subprocess
from dataclasses import dataclass, field
from typing import Any

from benchmarks.results import RESULTS, environment, load, publish

ROOT = Path(__file__).resolve().parent.parent
#: The microkit stack of another checkout (``--baseline``), run beside this one.
BASELINE = "baseline"
STACKS = {
    "django": "benchmarks.stacks.bare_django",
    "drf": "benchmarks.stacks.bare_drf",
    "peer": "benchmarks.stacks.peer",
    "microkit": "benchmarks.stacks.microkit",
    "microkit-nolog": "benchmarks.stacks.microkit_nolog",
    "microkit-one": "benchmarks.stacks.microkit_one",
}
#: The framework-cost scenario first: items served from memory (no query), a
#: 400 (the serializer refuses the body before any query), a 404 raised in a
#: view over the same items, a URL no route matches. Then the endpoints with a
#: query (in-memory SQLite), whose ratios the database dilutes.
FRAMEWORK = ["mem_list", "invalid", "mem_not_found", "unmatched"]
ENDPOINTS = [*FRAMEWORK, "list", "not_found", "ready"]
#: Stacks whose cost over bare DRF the framework-cost table gives.
OVER_DRF = ("microkit", "microkit-nolog", "microkit-one", BASELINE)
PAIRS = (
    ("microkit", "drf"),
    ("microkit", "peer"),
    ("microkit-nolog", "drf"),
    ("peer", "drf"),
    (BASELINE, "drf"),
    ("microkit", BASELINE),
    ("microkit-one", "microkit"),
)
Series = dict[tuple[str, str], list[float]]


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[str] = field(repr=False)

    @classmethod
    def start(cls, name: str, baseline: Path | None = None) -> Worker:
        """The stack's worker; for :data:`BASELINE`, this checkout's worker,
        routes and microkit stack over ``baseline``'s django_microkit, so that
        only the library differs."""
        settings = STACKS.get(name, "")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings}
        if name == BASELINE:
            assert baseline is not None
            settings = env["DJANGO_SETTINGS_MODULE"] = STACKS["microkit"]
            env["BENCH_LIBRARY"] = str(baseline.resolve())
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "worker.py"), settings],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        return cls(name, process)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"stack {self.name!r} stopped")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def summary(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def measure(
    stacks: list[str],
    rounds: int,
    batch: int,
    processes: int = 1,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Each stack in ``processes`` worker processes: a process's memory layout
    and hash seed make it a little faster or slower than another running the
    same code, so a stack's figure in a round is the mean over its processes."""
    workers: list[Worker] = []
    try:
        for name in stacks:
            workers += [Worker.start(name, baseline) for _ in range(processes)]
        statuses: dict[tuple[str, str], int] = {}
        for worker in workers:  # warm up: imports, caches, first queries
            for endpoint in ENDPOINTS:
                statuses[worker.name, endpoint] = worker.ask(
                    endpoint=endpoint, count=batch
                )["status"]
        wall: Series = {}
        cpu: Series = {}
        fastest: Series = {}
        for _ in range(rounds):
            for endpoint in ENDPOINTS:
                order = workers.copy()
                random.shuffle(order)
                walls: dict[str, list[float]] = {}
                cpus: dict[str, list[float]] = {}
                fasts: dict[str, list[float]] = {}
                for worker in order:
                    answer = worker.ask(endpoint=endpoint, count=batch)
                    walls.setdefault(worker.name, []).append(
                        statistics.median(answer["times"]) / 1000
                    )
                    cpus.setdefault(worker.name, []).append(answer["cpu"] / 1000)
                    fasts.setdefault(worker.name, []).append(
                        min(answer["times"]) / 1000
                    )
                for name in stacks:
                    wall.setdefault((name, endpoint), []).append(
                        statistics.fmean(walls[name])
                    )
                    cpu.setdefault((name, endpoint), []).append(
                        statistics.fmean(cpus[name])
                    )
                    fastest.setdefault((name, endpoint), []).append(
                        statistics.fmean(fasts[name])
                    )
        first = {worker.name: worker for worker in reversed(workers)}
        calls = {
            (name, endpoint): first[name].ask(
                endpoint=endpoint, count=50, profile=True
            )["calls"]
            for name in stacks
            for endpoint in ENDPOINTS
        }
    finally:
        for worker in workers:
            worker.stop()
    return {
        "wall": wall,
        "cpu": cpu,
        "fastest": fastest,
        "calls": calls,
        "statuses": statuses,
    }


def ratios(series: Series, a: str, b: str, endpoint: str) -> list[float]:
    return [
        x / y for x, y in zip(series[a, endpoint], series[b, endpoint], strict=True)
    ]


def _framework_table(result: dict[str, Any], stacks: list[str]) -> list[str]:
    """Per framework-cost endpoint and stack, over bare DRF: the ratio of the
    fastest request of each batch within each round (on a loaded machine the
    request least disturbed by other jobs), the µs it adds (median of the
    per-round differences), the median ratios of the batches' median wall time
    and of their CPU time, and the Python calls added per request."""
    wall, cpu, calls = result["wall"], result["cpu"], result["calls"]
    fastest = result["fastest"]
    shown = [s for s in OVER_DRF if s in stacks]
    if "drf" not in stacks or not shown:
        return []
    lines = [
        "| endpoint | "
        + " | ".join(
            f"{s} / drf, fastest | µs added | median wall | CPU | calls added"
            for s in shown
        )
        + " |",
        "|---|" + "---|---|---|---|---|" * len(shown),
    ]
    for endpoint in FRAMEWORK:
        cells = []
        for name in shown:
            pairs = zip(fastest[name, endpoint], fastest["drf", endpoint], strict=True)
            added = statistics.median(a - b for a, b in pairs)
            cells += [
                summary(ratios(fastest, name, "drf", endpoint)),
                f"{added:+.0f}",
                f"{statistics.median(ratios(wall, name, 'drf', endpoint)):.2f}",
                f"{statistics.median(ratios(cpu, name, 'drf', endpoint)):.2f}",
                f"{calls[name, endpoint] - calls['drf', endpoint]:+.0f}",
            ]
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    return lines


def _ratio_table(series: Series, stacks: list[str]) -> list[str]:
    pairs = [(a, b) for a, b in PAIRS if a in stacks and b in stacks]
    if not pairs:
        return []
    lines = ["| endpoint | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |"]
    lines.append("|---|" + "---|" * len(pairs))
    for endpoint in ENDPOINTS:
        cells = [summary(ratios(series, a, b, endpoint)) for a, b in pairs]
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    return lines


def report(
    stacks: list[str],
    result: dict[str, Any],
    rounds: int,
    batch: int,
    start: str,
    processes: int = 1,
) -> str:
    wall, cpu = result["wall"], result["cpu"]
    calls, statuses = result["calls"], result["statuses"]
    lines = [
        "## In-process WSGI: per-request cost",
        "",
        environment("drf-standardized-errors", "django-guid", "django-structlog")
        + f" Load average at the start: {start}.",
        "",
        f"{rounds} interleaved rounds of {batch} requests per stack and endpoint "
        f"in each of {processes} worker process(es) per stack "
        "(in-memory SQLite, local-memory cache, no network). Figures are "
        "min / median / max over rounds of each round's median (the mean over a "
        "stack's processes); the HTTP status is in brackets. `microkit` writes "
        "its JSON access line to /dev/null "
        "(without the client address: `ACCESS_LOG.CLIENT_ADDRESS` is off by "
        "default); `microkit-nolog` is the same stack with the access line off; "
        "`microkit-one` has `MicrokitMiddleware` in place of the three middleware "
        "and no error views. "
        "The readiness probe of `microkit` reuses a round of checks for "
        "`RESULT_TTL` (1 s), as deployed; `benchmarks/probes.py` measures fresh "
        "rounds.",
        "",
        "Framework cost (items from memory, no query: the primary figures), "
        "each stack over bare DRF, within each round: the ratio of the fastest "
        "request of each batch (min / median / max over rounds; on a loaded "
        "machine the request least disturbed by other jobs), the µs it adds "
        "(median of the per-round differences), the median ratios of the "
        "batches' median wall time and of their CPU time, and the Python calls "
        "added per request (cProfile, independent of the machine's load):",
        "",
        *_framework_table(result, stacks),
        "",
        "Wall time per request, µs:",
        "",
        "| endpoint | " + " | ".join(stacks) + " |",
        "|---|" + "---|" * len(stacks),
    ]
    for endpoint in ENDPOINTS:
        cells = [
            f"{summary(wall[s, endpoint])} ({statuses[s, endpoint]})" for s in stacks
        ]
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of wall time (within each round; min / median / max):", ""]
    lines += _ratio_table(wall, stacks)
    lines += [
        "",
        "Ratios of CPU time per request (process time of each batch; "
        "min / median / max):",
        "",
    ]
    lines += _ratio_table(cpu, stacks)
    lines += ["", "Python function calls per request (cProfile, noise-free):", ""]
    lines.append("| endpoint | " + " | ".join(stacks) + " |")
    lines.append("|---|" + "---|" * len(stacks))
    for endpoint in ENDPOINTS:
        lines.append(
            f"| {endpoint} | "
            + " | ".join(f"{calls[s, endpoint]:.0f}" for s in stacks)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stacks",
        nargs="+",
        choices=list(STACKS),
        default=[
            s for s in STACKS if (ROOT / (STACKS[s].replace(".", "/") + ".py")).exists()
        ],
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--processes", type=int, default=2, help="worker processes per stack"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit (git worktree add DIR COMMIT): its "
        "microkit stack runs beside this one as 'baseline', for before/after "
        "ratios from one run",
    )
    parser.add_argument(
        "--output",
        default=str(RESULTS),
        help="results file whose in-process section is rewritten, or - for stdout",
    )
    args = parser.parse_args()
    stacks = list(args.stacks)
    if args.baseline is not None:
        if not (args.baseline / "benchmarks" / "worker.py").exists():
            parser.error(f"{args.baseline} has no benchmarks/worker.py")
        stacks.append(BASELINE)
    start = load()
    result = measure(stacks, args.rounds, args.batch, args.processes, args.baseline)
    text = report(stacks, result, args.rounds, args.batch, start, args.processes)
    if args.baseline is not None:
        commit = subprocess.run(
            ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        text += (
            f"\n`{BASELINE}` is the microkit stack of commit {commit or '?'} "
            f"(`--baseline {args.baseline}`), run in the same rounds.\n"
        )
    publish("in-process", text, args.output)


if __name__ == "__main__":
    main()
