"""Requests per second and p99 latency over HTTP: each stack under gunicorn.

Bare DRF, the peer stack and django-microkit each run in one gunicorn sync
worker on 127.0.0.1 (a free port each); ``wrk`` (2 threads, 16 connections,
a bounded duration) loads the list endpoint of one stack at a time, stacks in a
fresh random order each round. The servers are stopped by PID at the end,
whatever happens.

    python benchmarks/http.py [--duration 8] [--rounds 4] [--output -]
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
import random
import re
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.results import RESULTS, environment, load, publish

ROOT = Path(__file__).resolve().parent.parent
STACKS = {
    "drf": "benchmarks.stacks.bare_drf",
    "peer": "benchmarks.stacks.peer",
    "microkit": "benchmarks.stacks.microkit",
    "microkit-nolog": "benchmarks.stacks.microkit_nolog",
}
DEFAULT_STACKS = ["drf", "peer", "microkit"]
WRK = os.environ.get("WRK", "/usr/bin/wrk")
PATH = "/items/"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(port: int, process: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn on port {port} exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not start in {limit} s")


@contextmanager
def servers(names: list[str]) -> Iterator[dict[str, tuple[int, int]]]:
    """A gunicorn per stack; yields their ports and PIDs; stops them all by PID."""
    processes: list[subprocess.Popen[bytes]] = []
    ports: dict[str, tuple[int, int]] = {}
    try:
        for name in names:
            port = _free_port()
            env = {**os.environ, "DJANGO_SETTINGS_MODULE": STACKS[name]}
            env.pop("DATABASE_URL", None)
            env.pop("REDIS_URL", None)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--worker-class",
                    "sync",
                    "--log-level",
                    "warning",
                    "benchmarks.wsgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            processes.append(process)
            _wait_until_up(port, process, 30)
            ports[name] = (port, process.pid)
        yield ports
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a gunicorn master and its workers,
    from /proc: what a stack costs, whatever else keeps the machine busy."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def wrk(port: int, duration: int) -> dict[str, float]:
    """Requests per second, p50 and p99 latency (ms), and non-2xx answers."""
    output = subprocess.run(
        [
            WRK,
            "--threads",
            "2",
            "--connections",
            "16",
            "--duration",
            f"{duration}s",
            "--timeout",
            "5s",
            "--latency",
            "--header",
            "Accept: application/json",
            f"http://127.0.0.1:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not (rps and total and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return {
        "rps": float(rps.group(1)),
        "p50": _ms(*p50.groups()),
        "p99": _ms(*p99.groups()),
        "bad": float(bad.group(1)) if bad else 0.0,
        "requests": float(total.group(1)),
    }


def summary(values: list[float], digits: int = 1) -> str:
    return (
        f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / "
        f"{max(values):.{digits}f}"
    )


def measure(names: list[str], duration: int, rounds: int) -> str:
    start = load()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with servers(names) as ports:
        for name in names:  # warm up
            wrk(ports[name][0], 2)
        for _ in range(rounds):
            order = list(names)
            random.shuffle(order)
            for name in order:
                port, pid = ports[name]
                used = cpu_seconds(pid)
                result = wrk(port, duration)
                used = cpu_seconds(pid) - used
                result["cpu_us"] = used / result["requests"] * 1e6
                results[name].append(result)
    lines = [
        "## HTTP: gunicorn and wrk",
        "",
        environment("gunicorn", "drf-standardized-errors", "django-guid")
        + f" Load average at the start: {start}.",
        "",
        f"`GET {PATH}` (20 items) on each stack under gunicorn (1 sync worker, "
        f"127.0.0.1), `wrk -t2 -c16 -d{duration}s`, {rounds} interleaved rounds "
        "after a 2 s warm-up; min / median / max over rounds. wrk shares the 2 "
        "cores with the server (and other jobs), so absolute figures are low and "
        "requests/s swing with the load; the server's CPU time per request (user "
        "+ system of the gunicorn processes, from /proc) is the steadier figure.",
        "",
        "| stack | requests/s | p50 ms | p99 ms | server CPU µs per request "
        "| non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = results[name]
        lines.append(
            f"| {name} | {summary([r['rps'] for r in runs])} "
            f"| {summary([r['p50'] for r in runs], 2)} "
            f"| {summary([r['p99'] for r in runs], 2)} "
            f"| {summary([r['cpu_us'] for r in runs], 0)} "
            f"| {sum(r['bad'] for r in runs):.0f} |"
        )
    base = "drf" if "drf" in names else None
    if base:
        lines += ["", "Relative to bare DRF (within each round; min / median / max):"]
        lines += [
            "",
            "| stack | requests/s | server CPU per request |",
            "|---|---|---|",
        ]
        for name in names:
            cells = [
                summary(
                    [
                        r[key] / b[key]
                        for r, b in zip(results[name], results[base], strict=True)
                    ],
                    2,
                )
                for key in ("rps", "cpu_us")
            ]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stacks", nargs="+", choices=list(STACKS), default=list(STACKS)
    )
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    if not 1 <= args.duration <= 60:
        parser.error("--duration must be between 1 and 60 seconds")
    # A terminated run still stops its servers (the finally of servers()).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    text = measure(args.stacks, args.duration, args.rounds)
    publish("http", text, args.output)


if __name__ == "__main__":
    main()
