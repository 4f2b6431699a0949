"""Uvicorn with draining on SIGTERM and the metrics multiprocess directory.

::

    python -m django_microkit.uvicorn orders.asgi:application --host 0.0.0.0 --port 8000

or, from Python, :func:`run` with uvicorn's own ``Config`` arguments. On
SIGTERM, :class:`DrainingServer` drains (:mod:`django_microkit.drain`):
readiness answers 503 at once, requests are served for
``MICROKIT["DRAIN"]["DELAY"]`` seconds, then uvicorn's graceful shutdown stops
accepting and waits for the requests in flight (``timeout_graceful_shutdown``).
A second SIGTERM, or SIGINT (Ctrl+C), stops at once. For several processes,
run gunicorn with uvicorn's worker class and :mod:`django_microkit.gunicorn`'s
metrics hooks, or one process per container.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn

from django_microkit.drain import drain_delay, is_draining, start_draining

__all__ = ["DrainingServer", "main", "make_server", "run"]


class DrainingServer(uvicorn.Server):
    """A uvicorn ``Server`` that drains on its first SIGTERM."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not is_draining():
            start_draining()
            delay = drain_delay()
            if delay > 0:
                # should_exit is polled by the server's main loop.
                stop = threading.Timer(delay, super().handle_exit, (sig, frame))
                stop.daemon = True
                stop.start()
                return
        super().handle_exit(sig, frame)


def make_server(app: str, **config: Any) -> DrainingServer:
    """A :class:`DrainingServer` of ``app`` (``"module:attribute"``); ``config``
    is given to ``uvicorn.Config``. The metrics multiprocess directory named by
    the environment is emptied of a previous run's files."""
    from django_microkit.metrics.multiprocess import (
        multiprocess_directory,
        prepare_directory,
    )

    path = multiprocess_directory()
    if path is not None:
        prepare_directory(path)
    return DrainingServer(uvicorn.Config(app, **config))


def run(app: str, **config: Any) -> None:
    """Serve ``app`` until it is stopped: :func:`make_server`, then its ``run()``."""
    make_server(app, **config).run()


def _options(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m django_microkit.uvicorn",
        description="Uvicorn with draining on SIGTERM.",
    )
    parser.add_argument("app", help="the ASGI application, module:attribute")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app-dir", default="", help="added to sys.path first")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=None)
    args = parser.parse_args(argv)
    if args.app_dir:
        # As uvicorn's own --app-dir: where the application is imported from.
        sys.path.insert(0, args.app_dir)
    return {
        "app": args.app,
        "host": args.host,
        "port": args.port,
        "lifespan": args.lifespan,
        "access_log": not args.no_access_log,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: the application and uvicorn's most used options."""
    run(**_options(argv))


if __name__ == "__main__":  # pragma: no cover - the command line
    main()
