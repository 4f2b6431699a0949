"""Per-request cost of django-microkit against bare Django, bare DRF and the peer stack.

Each stack runs in its own worker process (Django settings are process-global);
this runner drives them in interleaved rounds, in a fresh random order each
round, so that drift of a shared, noisy machine falls on every stack alike.
Ratios are taken within a round, then summarised over rounds.

    python benchmarks/run.py                  # all stacks, all endpoints
    python benchmarks/run.py --rounds 5 --batch 50 --output -
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STACKS = {
    "django": "benchmarks.stacks.bare_django",
    "drf": "benchmarks.stacks.bare_drf",
    "peer": "benchmarks.stacks.peer",
    "microkit": "benchmarks.stacks.microkit",
}
ENDPOINTS = ["list", "not_found", "invalid", "ready"]


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[str] = field(repr=False)

    @classmethod
    def start(cls, name: str) -> Worker:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": STACKS[name]}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "worker.py"), STACKS[name]],
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
        self.process.wait(timeout=30)


def summary(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def measure(stacks: list[str], rounds: int, batch: int) -> dict[str, Any]:
    workers = {name: Worker.start(name) for name in stacks}
    try:
        statuses: dict[tuple[str, str], int] = {}
        for worker in workers.values():  # warm up: imports, caches, first queries
            for endpoint in ENDPOINTS:
                statuses[worker.name, endpoint] = worker.ask(
                    endpoint=endpoint, count=batch
                )["status"]
        medians: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for endpoint in ENDPOINTS:
                order = list(workers)
                random.shuffle(order)
                for name in order:
                    times = workers[name].ask(endpoint=endpoint, count=batch)["times"]
                    medians.setdefault((name, endpoint), []).append(
                        statistics.median(times) / 1000
                    )
        calls = {
            (name, endpoint): workers[name].ask(
                endpoint=endpoint, count=50, profile=True
            )["calls"]
            for name in workers
            for endpoint in ENDPOINTS
        }
    finally:
        for worker in workers.values():
            worker.stop()
    return {"medians": medians, "calls": calls, "statuses": statuses}


def ratios(
    medians: dict[tuple[str, str], list[float]], a: str, b: str, endpoint: str
) -> list[float]:
    return [
        x / y for x, y in zip(medians[a, endpoint], medians[b, endpoint], strict=True)
    ]


def report(stacks: list[str], result: dict[str, Any], rounds: int, batch: int) -> str:
    medians, calls, statuses = result["medians"], result["calls"], result["statuses"]
    lines = [
        f"## In-process WSGI, {date.today().isoformat()}",
        "",
        f"Python {platform.python_version()}, Django {version('django')}, "
        f"DRF {version('djangorestframework')}, {os.cpu_count()} cores. "
        f"{rounds} interleaved rounds of {batch} requests per stack and endpoint; "
        "figures are min / median / max over rounds of each round's median.",
        "",
        "| endpoint | " + " | ".join(f"{s} µs" for s in stacks) + " |",
        "|---|" + "---|" * len(stacks),
    ]
    for endpoint in ENDPOINTS:
        cells = [
            f"{summary(medians[s, endpoint])} ({statuses[s, endpoint]})" for s in stacks
        ]
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    pairs = [
        (a, b)
        for a, b in (("microkit", "drf"), ("microkit", "peer"), ("peer", "drf"))
        if a in stacks and b in stacks
    ]
    if pairs:
        lines += ["", "Ratios (within each round; min / median / max):", ""]
        lines.append(
            "| endpoint | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |"
        )
        lines.append("|---|" + "---|" * len(pairs))
        for endpoint in ENDPOINTS:
            cells = [summary(ratios(medians, a, b, endpoint)) for a, b in pairs]
            lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
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
        default=[
            s for s in STACKS if (ROOT / (STACKS[s].replace(".", "/") + ".py")).exists()
        ],
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--output", default="-", help="file to append the report to, or - for stdout"
    )
    args = parser.parse_args()
    result = measure(args.stacks, args.rounds, args.batch)
    text = report(args.stacks, result, args.rounds, args.batch)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "a") as output:
            output.write("\n" + text)
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
