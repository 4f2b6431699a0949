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

The primary figure is ``client / session-same-headers``: the same call with the
same headers on the wire, so the ratio is what ``ServiceClient`` itself adds
(target 1.05x). Both are batches of the same round, so the ratio is taken within
a round (min / median / max over rounds), for wall time and for this process's
CPU time, beside the Python calls added per call (cProfile). Every batch starts
with one untimed call, so no variant pays for a settings change (a new
connection pool) inside its figures.

Then ``mint_service_token()`` alone, HS256 and EdDSA, with and without reuse.
The server runs in its own process and is stopped by its PID at the end.

With ``--baseline DIR`` (a checkout of another commit: ``git worktree add DIR
COMMIT``), ``client`` and ``session-same-headers`` are timed in worker processes
(two per checkout) calling the same server: some importing this checkout's
``django_microkit``, the others ``DIR``'s, batch after batch in a random order
each round: each checkout's ``client / session-same-headers`` within a round,
and ``client`` new / old, from one run. ``--body-bytes`` sets the size of the
JSON answer.

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
#: The raw call the client is measured against: same request, same headers.
REFERENCE = "session-same-headers"
#: The variants a ``--baseline`` worker times.
PAIRED = (REFERENCE, "client")


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
    """Median wall time and mean CPU time of this process per call, in µs,
    after one untimed call (a connection pool made anew after a settings
    change opens its connection there)."""
    call()
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


def paired(series: dict[str, list[float]], a: str, b: str) -> str:
    """``a / b`` within each round: min / median / max over rounds."""
    return summary([x / y for x, y in zip(series[a], series[b], strict=True)])


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
        f"Each client variant over `{REFERENCE}` (the same call with the same "
        "headers), within each round (min / median / max over rounds), and the "
        "Python calls it adds per call:",
        "",
        f"| variant | wall / {REFERENCE} | CPU / {REFERENCE} | Python calls added |",
        "|---|---|---|---|",
    ]
    for variant in VARIANTS:
        if variant.startswith("client"):
            lines.append(
                f"| {variant} | {paired(times, variant, REFERENCE)} "
                f"| {paired(cpu, variant, REFERENCE)} "
                f"| {calls[variant] - calls[REFERENCE]:+.0f} |"
            )
    lines += [
        "",
        "Every variant:",
        "",
        "| variant | wall µs per call | wall ratio to session | wall ratio to "
        "session-no-env | client CPU µs per call | CPU ratio to session-no-env "
        "| Python calls per call |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        lines.append(
            f"| {variant} | {summary(times[variant])} "
            f"| {paired(times, variant, 'session')} "
            f"| {paired(times, variant, 'session-no-env')} "
            f"| {summary(cpu[variant])} "
            f"| {paired(cpu, variant, 'session-no-env')} | {calls[variant]:.0f} |"
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
    """A worker process for ``--baseline``: the variants of ``PAIRED`` with
    the ``django_microkit`` of ``root``, under ``client``'s settings for the
    whole run; for each line ``VARIANT N`` read, times N calls and writes back
    their median wall time and mean CPU time, in µs; for a line ``VARIANT
    calls``, the Python calls per call (cProfile)."""
    sys.path.insert(0, str(root))
    _setup()
    import django_microkit

    assert Path(django_microkit.__file__).is_relative_to(root)
    callers = _callers(base_url)
    applied = callers["client"][0]
    with applied("client"):
        for line in sys.stdin:
            variant, count = line.split()
            call = callers[variant][1]
            if count == "calls":
                answer = {"calls": _calls(call)}
            else:
                wall, cpu = _batch(call, int(count))
                answer = {"wall": wall, "cpu": cpu}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


def measure_baseline(
    base_url: str, baseline: Path, rounds: int, batch: int, processes: int
) -> list[str]:
    """``client`` and ``session-same-headers`` with this checkout's
    ``django_microkit`` (``new``) and with ``baseline``'s (``old``), in the
    same rounds, each in ``processes`` workers: a process's memory layout and
    hash seed make it a little faster or slower than another running the same
    code, so a checkout's figure in a round is the mean over its processes."""
    roots = {"new": ROOT, "old": baseline}
    times: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    with ExitStack() as stack:
        workers = [
            (name, stack.enter_context(_process("--worker", str(root), base_url)))
            for name, root in roots.items()
            for _ in range(processes)
        ]

        def ask(
            process: subprocess.Popen[str], variant: str, count: Any = batch
        ) -> dict[str, float]:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(f"{variant} {count}\n")
            process.stdin.flush()
            answer: dict[str, float] = json.loads(process.stdout.readline())
            return answer

        batches = [(name, p, variant) for name, p in workers for variant in PAIRED]
        for _, process, variant in batches:  # warm up
            ask(process, variant)
        calls = {
            f"{name} {variant}": ask(process, variant, "calls")["calls"]
            for name, process, variant in batches
        }
        for _ in range(rounds):
            random.shuffle(batches)
            answers = [(f"{n} {v}", ask(process, v)) for n, process, v in batches]
            for kind, series in times.items():
                for key in {key for key, _ in answers}:
                    series.setdefault(key, []).append(
                        statistics.fmean(a[kind] for k, a in answers if k == key)
                    )
    wall, cpu = times["wall"], times["cpu"]
    lines = [
        f"| checkout | client / {REFERENCE}, wall | CPU | Python calls added "
        f"| client wall µs per call | client CPU µs per call "
        f"| {REFERENCE} wall µs per call | {REFERENCE} CPU µs per call "
        f"| Python calls per call, client; {REFERENCE} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, root in roots.items():
        client, reference = f"{name} client", f"{name} {REFERENCE}"
        lines.append(
            f"| {name} (`{root}`) | {paired(wall, client, reference)} "
            f"| {paired(cpu, client, reference)} "
            f"| {calls[client] - calls[reference]:+.0f} "
            f"| {summary(wall[client])} | {summary(cpu[client])} "
            f"| {summary(wall[reference])} | {summary(cpu[reference])} "
            f"| {calls[client]:.0f}; {calls[reference]:.0f} |"
        )
    lines += [
        "",
        "`client` of this checkout over the baseline's, within each round:",
        "",
        "| | wall | CPU | Python calls per call |",
        "|---|---|---|---|",
        f"| client new / old | {paired(wall, 'new client', 'old client')} "
        f"| {paired(cpu, 'new client', 'old client')} "
        f"| {calls['new client'] / calls['old client']:.3f} "
        f"({calls['new client'] - calls['old client']:+.0f}) |",
    ]
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
                f"`client` (`ServiceClient.get`, one log line) and `{REFERENCE}` "
                "(a raw `requests.Session` making the same call with the same "
                f"headers) with this checkout's `django_microkit` (`new`) and "
                f"with commit {commit or '?'}'s (`old`, `--baseline`), each "
                f"checkout in {args.processes} worker processes, calling one "
                f"server answering {len(json_body(args.body_bytes))} bytes of "
                f"JSON; {args.rounds} rounds of {args.batch} calls per process "
                "and variant in a random order, each batch's median wall time "
                "and mean CPU time (the mean over a checkout's processes). "
                "Ratios are taken within each round; min / median / max over "
                "rounds. Python calls are per call (cProfile), the figure the "
                "machine's load does not move.",
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
