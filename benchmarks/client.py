"""Cost of a ``ServiceClient`` call against a raw pooled ``requests.Session``,
and of minting service tokens.

A ``ThreadingHTTPServer`` in a process of its own on 127.0.0.1 answers every
GET with a small JSON body (keep-alive). This process calls it in interleaved
rounds, a batch per variant in a fresh random order each round:

- ``session``: ``requests.Session().get(url, timeout=...)`` then ``.json()``;
- ``session-no-env``: the same with ``trust_env = False`` (no proxy or netrc
  lookup from the environment), the transport ``ServiceClient`` uses;
- ``session-same-headers``: ``session-no-env`` sending the headers the client
  sends (``User-Agent``, ``Accept``, ``X-Request-ID``, ``traceparent``), made once:
  what the fields cost on the wire, in ``requests`` and on the server;
- ``client``: ``ServiceClient("bench").get(path)``: settings read at call time,
  circuit breaker, request-ID and trace headers, ``User-Agent``, one log line
  (JSON to /dev/null), JSON parsing; no service token (no signing key);
- ``client-nolog``: the same with its logger above info (no log line);
- ``client+token``: the same with an HS256 signing key: a token minted per call;
- ``client+reuse``: the same with ``REUSE_TOKENS_FOR = ["bench"]``.

Then ``mint_service_token()`` alone, HS256 and EdDSA, with and without reuse.
The server runs in its own process and is stopped by its PID at the end.

With ``--baseline DIR`` (a checkout of another commit: ``git worktree add DIR
COMMIT``), only ``client`` is timed, in two worker processes calling the same
server: one importing this checkout's ``django_microkit``, one ``DIR``'s, batch
after batch in a random order each round, for a before/after ratio from one
run. ``--body-bytes`` sets the size of the JSON answer.

    python benchmarks/client.py [--rounds 10] [--batch 200] [--body-bytes 38]
        [--baseline DIR] [--processes 2] [--output -]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import cProfile
import json
import logging
import os
import pstats
import random
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks.results import RESULTS, environment, load, publish

ROOT = Path(__file__).resolve().parent.parent
HMAC_KEY = "benchmarks-only-hmac-secret-of-at-least-32-bytes"
VARIANTS = (
    "session",
    "session-no-env",
    "session-same-headers",
    "client",
    "client-nolog",
    "client+token",
    "client+reuse",
)


def json_body(size: int) -> bytes:
    """A JSON object of about ``size`` bytes (38 at least)."""
    fields: dict[str, Any] = {"id": 7, "name": "item 7", "size": 7}
    padding = size - len(json.dumps(fields)) - len(', "notes": ""')
    if padding > 0:
        fields["notes"] = "n" * padding
    return json.dumps(fields).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: no Nagle / delayed-ACK stall.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    body = json_body(38)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(body_bytes: int) -> None:
    """The server process: prints its port, serves until terminated."""
    _Handler.body = json_body(body_bytes)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


@contextmanager
def _process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """This script run with ``args``, stopped by its PID at the end."""
    process = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def server(body_bytes: int) -> Iterator[str]:
    with _process("--serve", "--body-bytes", str(body_bytes)) as process:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"


def _microkit(base_url: str, variant: str, alg: str = "HS256") -> dict[str, Any]:
    settings: dict[str, Any] = {
        "SERVICE_NAME": "orders",
        "SERVICE_VERSION": "1.0.0",
        "SERVICES": {"bench": {"BASE_URL": base_url}},
    }
    if variant in ("client+token", "client+reuse"):
        settings["SERVICE_AUTH"] = {
            "SIGNING_KEYS": [{"kid": "bench", "alg": alg, "key": {"value": _key(alg)}}],
            "REUSE_TOKENS_FOR": ["bench"] if variant == "client+reuse" else [],
        }
    return settings


_keys: dict[str, str] = {}


def _key(alg: str) -> str:
    if alg == "HS256":
        return HMAC_KEY
    if alg not in _keys:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (
            Ed25519PrivateKey,
        )

        _keys[alg] = (
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
    return _keys[alg]


def _setup() -> None:
    import django
    from django.conf import settings

    import django_microkit.logging

    log_config = django_microkit.logging.logging_config()
    log_config["handlers"]["django_microkit"] = {
        "class": "logging.FileHandler",
        "filename": os.devnull,
        "formatter": "django_microkit",
    }
    settings.configure(
        SECRET_KEY="benchmarks-only",
        INSTALLED_APPS=["django.contrib.contenttypes", "django_microkit"],
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        },
        DATABASES={},
        USE_TZ=True,
        LOGGING=log_config,
        MICROKIT={"SERVICE_NAME": "orders"},
    )
    django.setup()


def _callers(base_url: str) -> dict[str, tuple[Any, Callable[[], Any]]]:
    """Each variant: what applies its settings, and the call it times."""
    import requests
    from django.test import override_settings

    from django_microkit.client import LOGGER, ServiceClient
    from django_microkit.client.headers import user_agent

    url = f"{base_url}/items/7/"

    def raw_call(
        session: requests.Session, headers: dict[str, str] | None = None
    ) -> Callable[[], Any]:
        def raw() -> Any:
            response = session.get(url, headers=headers, timeout=(1.0, 5.0))
            response.raise_for_status()
            return response.json()

        return raw

    def no_env() -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        return session

    same_headers = {
        "User-Agent": user_agent(),
        "Accept": "application/json",
        "X-Request-ID": os.urandom(16).hex(),
        "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-00",
    }
    raw = {
        "session": raw_call(requests.Session()),
        "session-no-env": raw_call(no_env()),
        "session-same-headers": raw_call(no_env(), same_headers),
    }

    client = ServiceClient("bench")

    def call() -> Any:
        return client.get("/items/7/")

    @contextmanager
    def applied(variant: str) -> Iterator[None]:
        client_log = logging.getLogger(LOGGER)
        if variant == "client-nolog":
            client_log.setLevel(logging.WARNING)
        try:
            with override_settings(MICROKIT=_microkit(base_url, variant)):
                yield
        finally:
            client_log.setLevel(logging.NOTSET)

    return {variant: (applied, raw.get(variant, call)) for variant in VARIANTS}


def _batch(call: Callable[[], Any], count: int) -> tuple[float, float]:
    """Median wall time and mean CPU time of this process per call, in µs."""
    times = []
    cpu = time.process_time_ns()
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return (
        statistics.median(times) / 1000,
        (time.process_time_ns() - cpu) / count / 1000,
    )


def _calls(call: Callable[[], Any], count: int = 50) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        call()
    profile.disable()
    return pstats.Stats(profile).total_calls / count  # type: ignore[attr-defined]


def summary(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def measure_calls(base_url: str, rounds: int, batch: int) -> list[str]:
    callers = _callers(base_url)
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cpu: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    calls: dict[str, float] = {}
    for variant, (applied, call) in callers.items():  # warm up, count calls
        with applied(variant):
            _batch(call, batch)
            calls[variant] = _calls(call)
    for _ in range(rounds):
        order = list(VARIANTS)
        random.shuffle(order)
        for variant in order:
            applied, call = callers[variant]
            with applied(variant):
                wall, used = _batch(call, batch)
                times[variant].append(wall)
                cpu[variant].append(used)
    lines = [
        "| variant | wall µs per call | wall ratio to session | wall ratio to "
        "session-no-env | client CPU µs per call | CPU ratio to session-no-env "
        "| Python calls per call |",
        "|---|---|---|---|---|---|---|",
    ]

    def ratio(series: dict[str, list[float]], a: str, b: str) -> str:
        return summary([x / y for x, y in zip(series[a], series[b], strict=True)])

    for variant in VARIANTS:
        lines.append(
            f"| {variant} | {summary(times[variant])} "
            f"| {ratio(times, variant, 'session')} "
            f"| {ratio(times, variant, 'session-no-env')} | {summary(cpu[variant])} "
            f"| {ratio(cpu, variant, 'session-no-env')} | {calls[variant]:.0f} |"
        )
    return lines


def measure_minting(base_url: str, count: int) -> list[str]:
    from django.test import override_settings

    from django_microkit.service_auth import mint_service_token

    lines = [
        "| key | µs per token, new each call | µs per token, reused "
        "(`REUSE_TOKENS_FOR`) |",
        "|---|---|---|",
    ]
    for alg in ("HS256", "EdDSA"):
        cells = []
        for variant in ("client+token", "client+reuse"):
            with override_settings(MICROKIT=_microkit(base_url, variant, alg)):
                mint_service_token("bench")
                cells.append(
                    _batch(lambda: mint_service_token("bench"), count)[0]  # noqa: B023
                )
        lines.append(f"| {alg} | {cells[0]:.2f} | {cells[1]:.2f} |")
    return lines


def work(root: Path, base_url: str) -> None:
    """A worker process for ``--baseline``: ``client`` with the
    ``django_microkit`` of ``root``; for each line ``N`` read, times N calls
    and writes back their median wall time and mean CPU time, in µs; for a
    line ``calls``, the Python calls per call (cProfile)."""
    sys.path.insert(0, str(root))
    _setup()
    import django_microkit

    assert Path(django_microkit.__file__).is_relative_to(root)
    applied, call = _callers(base_url)["client"]
    with applied("client"):
        for line in sys.stdin:
            if line.strip() == "calls":
                answer = {"calls": _calls(call)}
            else:
                wall, cpu = _batch(call, int(line))
                answer = {"wall": wall, "cpu": cpu}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


def measure_baseline(
    base_url: str, baseline: Path, rounds: int, batch: int, processes: int
) -> list[str]:
    """``client`` of this checkout (``new``) against ``baseline``'s (``old``),
    in the same rounds, each in ``processes`` workers: a process's memory
    layout and hash seed make it a little faster or slower than another
    running the same code, so a checkout's figure in a round is the mean over
    its processes."""
    roots = {"new": ROOT, "old": baseline}
    times: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    with ExitStack() as stack:
        workers = [
            (name, stack.enter_context(_process("--worker", str(root), base_url)))
            for name, root in roots.items()
            for _ in range(processes)
        ]

        def ask(process: subprocess.Popen[str], line: Any = batch) -> dict[str, float]:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(f"{line}\n")
            process.stdin.flush()
            answer: dict[str, float] = json.loads(process.stdout.readline())
            return answer

        for _, process in workers:  # warm up
            ask(process)
        calls = {name: ask(process, "calls")["calls"] for name, process in workers}
        for _ in range(rounds):
            order = workers.copy()
            random.shuffle(order)
            answers = [(name, ask(process)) for name, process in order]
            for kind, series in times.items():
                for name in roots:
                    series.setdefault(name, []).append(
                        statistics.fmean(a[kind] for n, a in answers if n == name)
                    )
    lines = [
        "| checkout | wall µs per call | CPU µs per call | Python calls per call |",
        "|---|---|---|---|",
    ]
    for name, root in roots.items():
        lines.append(
            f"| {name} (`{root}`) | {summary(times['wall'][name])} "
            f"| {summary(times['cpu'][name])} | {calls[name]:.0f} |"
        )
    ratios = {
        kind: summary(
            [a / b for a, b in zip(series["new"], series["old"], strict=True)]
        )
        for kind, series in times.items()
    }
    lines.append(
        f"| ratio new / old | {ratios['wall']} | {ratios['cpu']} "
        f"| {calls['new'] / calls['old']:.3f} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--body-bytes", type=int, default=38, help="size of the JSON answer"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit (git worktree add DIR COMMIT): "
        "'client' of both, in the same rounds, for before/after ratios",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="worker processes per checkout, with --baseline",
    )
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.body_bytes)
        return
    if args.worker:
        work(Path(args.worker[0]).resolve(), args.worker[1])
        return
    # A terminated run still stops its server (the finally of server()).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    if args.baseline is not None:
        baseline = args.baseline.resolve()
        if not (baseline / "django_microkit" / "client").is_dir():
            parser.error(f"{baseline} has no django_microkit/client")
        start = load()
        with server(args.body_bytes) as base_url:
            lines = measure_baseline(
                base_url, baseline, args.rounds, args.batch, args.processes
            )
        commit = subprocess.run(
            ["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        text = "\n".join(
            [
                "## Service client: this checkout against a baseline",
                "",
                environment("requests", "urllib3")
                + f" Load average at the start: {start}.",
                "",
                f"`client` (`ServiceClient.get`, one log line) of this checkout "
                f"(`new`) and of commit {commit or '?'} (`old`, `--baseline`), "
                f"each in {args.processes} worker processes, calling one server "
                "answering "
                f"{len(json_body(args.body_bytes))} bytes of JSON; {args.rounds} "
                f"rounds of {args.batch} calls per process in a random order, "
                "each round's median (the mean over a checkout's processes). "
                "Min / median / max over rounds.",
                "",
                *lines,
            ]
        )
        publish("client-baseline", text + "\n", args.output)
        return
    _setup()
    start = load()
    with server(args.body_bytes) as base_url:
        call_lines = measure_calls(base_url, args.rounds, args.batch)
        mint_lines = measure_minting(base_url, args.batch)
    text = "\n".join(
        [
            "## Service client: call and token costs",
            "",
            environment("requests", "urllib3", "PyJWT", "cryptography")
            + f" Load average at the start: {start}.",
            "",
            f"Calls to a `ThreadingHTTPServer` on 127.0.0.1 (its own process) "
            f"returning a {len(json_body(args.body_bytes))}-byte JSON body; "
            f"{args.rounds} interleaved rounds of "
            f"{args.batch} calls per variant, each round's median. `session` is a "
            "pooled `requests.Session`; `client` is `ServiceClient` without a "
            "signing key (request-ID and trace headers, breaker, log line); "
            "`session-no-env` is a session with `trust_env = False`, as "
            "`ServiceClient`'s own; "
            "`client+token` mints an HS256 token per call; `client+reuse` reuses "
            "it (`REUSE_TOKENS_FOR`). The server's time is in every figure; "
            "Python calls and CPU time are the calling process's only (the server's "
            "work is left out of them). Times are min / median / max over rounds.",
            "",
            *call_lines,
            "",
            f"Minting alone (`mint_service_token`), median of {args.batch}:",
            "",
            *mint_lines,
        ]
    )
    text += "\n"
    publish("client", text, args.output)


if __name__ == "__main__":
    main()
