"""One stack in its own process: answers timing commands from the runner.

Started by ``benchmarks/run.py`` with the stack's settings module; reads one JSON
command per line on stdin and writes one JSON answer per line on stdout. Requests
are in-process WSGI calls (no network), so only the stack's own cost is timed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http: the repository root
# takes its place.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import benchmarks  # noqa: E402, F401  (this checkout's harness, whatever follows)

# ``BENCH_LIBRARY``: the root of another checkout whose django_microkit the
# stacks import instead of this one's: the same harness, routes and views, only
# the library differs (``run.py --baseline``).
if os.environ.get("BENCH_LIBRARY"):
    sys.path.insert(0, os.environ["BENCH_LIBRARY"])

import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from typing import Any

ENDPOINTS: dict[str, tuple[str, str, bytes]] = {
    # Items from memory: no query, so only the framework and middleware count.
    "mem_list": ("GET", "/mem/items/", b""),
    "mem_not_found": ("GET", "/mem/items/999999/", b""),
    "unmatched": ("GET", "/no/such/route/", b""),
    # With a query (in-memory SQLite).
    "list": ("GET", "/items/", b""),
    "not_found": ("GET", "/items/999999/", b""),
    "invalid": ("POST", "/items/new/", b'{"name": 5}'),
    "ready": ("GET", "/health/ready", b""),
}


def _environ(method: str, path: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _consume(result: Any) -> None:
    """Read a WSGI response to the end and close it, as a server does."""
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close:
            close()


def _setup() -> Callable[[str], int]:
    import django
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks.benchapp.models import Item

    Item.objects.bulk_create(Item(name=f"item {i}", size=i) for i in range(100))
    application = get_wsgi_application()
    statuses: dict[str, int] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc: Any = None
    ) -> Any:
        statuses["last"] = int(status[:3])
        return lambda data: None

    def call(endpoint: str) -> int:
        method, path, body = ENDPOINTS[endpoint]
        _consume(application(_environ(method, path, body), start_response))
        return statuses["last"]

    return call


def main() -> None:
    call = _setup()
    for line in sys.stdin:
        command = json.loads(line)
        endpoint, count = command["endpoint"], command["count"]
        if command.get("profile"):
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(count):
                call(endpoint)
            profile.disable()
            calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
            answer: dict[str, Any] = {"calls": calls / count}
        else:
            times = []
            status = 0
            cpu_start = time.process_time_ns()
            for _ in range(count):
                start = time.perf_counter_ns()
                status = call(endpoint)
                times.append(time.perf_counter_ns() - start)
            cpu = (time.process_time_ns() - cpu_start) / count
            answer = {"times": times, "cpu": cpu, "status": status}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", sys.argv[1])
    main()
