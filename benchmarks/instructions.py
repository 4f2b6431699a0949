"""Instructions per request of each stack, counted by valgrind's callgrind.

A count of instructions does not depend on what else the machine is doing: the
same code on the same inputs gives the same total within a fraction of a per
cent, on a quiet machine or a loaded one. It backs the timed ratios of
``run.py`` with a figure noise cannot move (though an instruction is not a
fixed time: cache misses and branch mispredictions are left out).

Each stack runs in its own process under ``valgrind --tool=callgrind``, which
collects nothing during Django's set-up and a warm-up of every endpoint, and
then only inside one ``functools.reduce`` call per endpoint that makes the
measured requests (``--toggle-collect``), each dumped on its own
(``--dump-after``). Needs valgrind (``apt install valgrind``); about a minute
per stack.

    python benchmarks/instructions.py --output -
    python benchmarks/instructions.py --baseline ../microkit-base
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
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from benchmarks.results import RESULTS, environment, load, publish
from benchmarks.run import BASELINE, FRAMEWORK, OVER_DRF, ROOT, STACKS

#: The function whose calls callgrind counts: the measured loop runs inside one.
TOGGLE = "functools_reduce"
_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def _serve(endpoints: list[str], warmup: int, requests: int) -> None:
    """In the process under callgrind: warm every endpoint up, then make each
    one's requests inside one ``functools.reduce`` call (counted and dumped).

    Before each, the objects made so far are collected and frozen out of the
    garbage collector's reach: a full collection, which comes every so many
    allocations and walks the whole heap, then cannot fall inside one stack's
    count and not another's."""
    import functools
    import gc

    from benchmarks.worker import _setup

    call = _setup()
    for endpoint in endpoints:
        for _ in range(warmup):
            call(endpoint)
    for endpoint in endpoints:
        gc.collect()
        gc.freeze()
        functools.reduce(lambda status, _: call(endpoint), range(requests), 0)


def _count(
    name: str, baseline: Path | None, endpoints: list[str], warmup: int, requests: int
) -> dict[str, float]:
    """Instructions per request of stack ``name`` on each endpoint."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": STACKS.get(name, "")}
    if name == BASELINE:
        assert baseline is not None
        env["DJANGO_SETTINGS_MODULE"] = STACKS["microkit"]
        env["BENCH_LIBRARY"] = str(baseline.resolve())
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={TOGGLE}",
            f"--dump-after={TOGGLE}",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            ",".join(endpoints),
            str(warmup),
            str(requests),
        ]
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        dumps = sorted(
            Path(directory).glob("callgrind.out.*"),
            key=lambda path: int(path.name.rsplit(".", 1)[1]),
        )
        totals = []
        for dump in dumps:
            match = _TOTAL.search(dump.read_text(errors="replace"))
            totals.append(int(match[1]) if match else 0)
    if len(totals) != len(endpoints):
        raise RuntimeError(f"{name}: {len(totals)} dumps, {len(endpoints)} endpoints")
    pairs = zip(endpoints, totals, strict=True)
    return {endpoint: total / requests for endpoint, total in pairs}


def report(counts: dict[str, dict[str, float]], endpoints: list[str]) -> list[str]:
    over = [name for name in OVER_DRF if name in counts]
    lines = [
        "Instructions per request (callgrind; thousands), and each stack over "
        "bare DRF: the instructions it adds and their ratio.",
        "",
        "| endpoint | "
        + " | ".join(counts)
        + " | "
        + " | ".join(f"{name} − drf | {name} / drf" for name in over)
        + " |",
        "|---|" + "---|" * (len(counts) + 2 * len(over)),
    ]
    for endpoint in endpoints:
        cells = [f"{counts[name][endpoint] / 1000:.1f}" for name in counts]
        drf = counts["drf"][endpoint]
        for name in over:
            value = counts[name][endpoint]
            cells.append(f"{(value - drf) / 1000:+.1f}")
            cells.append(f"{value / drf:.3f}")
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        endpoints, warmup, requests = sys.argv[2].split(","), *map(int, sys.argv[3:5])
        _serve(endpoints, warmup, requests)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stacks",
        nargs="+",
        default=["drf", "microkit", "microkit-nolog", "microkit-one"],
        choices=list(STACKS),
    )
    parser.add_argument("--endpoints", nargs="+", default=FRAMEWORK)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--baseline", type=Path, help="another checkout, as 'baseline'")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt install valgrind).")
    names = list(dict.fromkeys(["drf", *args.stacks]))
    if args.baseline is not None:
        names.append(BASELINE)
    start_load = load()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {
            name: pool.submit(
                _count, name, args.baseline, args.endpoints, args.warmup, args.requests
            )
            for name in names
        }
        counts = {name: future.result() for name, future in futures.items()}
    lines = [
        "## Instructions per request",
        "",
        environment() + f" Load average at the start: {start_load}.",
        "",
        f"Each stack in its own process under callgrind: {args.warmup} requests "
        f"per endpoint uncounted, then {args.requests} counted per endpoint (see "
        "`benchmarks/instructions.py`). Instruction counts repeat within a "
        "fraction of a per cent whatever the machine's load.",
        "",
        *report(counts, args.endpoints),
    ]
    if args.baseline is not None:
        lines += ["", f"`{BASELINE}` is the microkit stack over `{args.baseline}`."]
    publish("instructions", "\n".join(lines) + "\n", args.output)


if __name__ == "__main__":
    main()
