"""Gunicorn server hooks: metrics across workers, and draining on SIGTERM.

Use the module as gunicorn's configuration::

    gunicorn -c python:django_microkit.gunicorn orders.wsgi:application

or import its hooks into a service's own ``gunicorn.conf.py``::

    from django_microkit.gunicorn import (  # noqa: F401
        child_exit, on_exit, on_starting, post_worker_init,
    )

- :func:`on_starting` (the master, before any worker): names prometheus_client's
  multiprocess directory in the environment the workers inherit
  (``PROMETHEUS_MULTIPROC_DIR``, else ``MICROKIT["METRICS"]["MULTIPROCESS_DIR"]``
  when ``DJANGO_SETTINGS_MODULE`` is set, else, for more than one worker, a
  temporary directory of its own) and empties it of a previous run's files.
- :func:`child_exit`: a worker has exited; its ``live*`` gauges are dropped.
- :func:`post_worker_init` (each worker): on SIGTERM the worker drains
  (:mod:`django_microkit.drain`): readiness 503 at once, requests served for
  ``MICROKIT["DRAIN"]["DELAY"]`` seconds, then gunicorn's graceful stop.
  Further SIGTERMs change nothing; SIGQUIT and SIGINT still stop at once.
  gunicorn's ``graceful_timeout`` must exceed that delay plus the longest
  request. For the sync and gthread workers; under ASGI use
  :mod:`django_microkit.uvicorn`.
- :func:`on_exit`: removes the temporary directory it made.

With ``preload_app`` the application, and so prometheus_client, is imported
in the master before the hooks run: set ``PROMETHEUS_MULTIPROC_DIR`` in the
environment of gunicorn itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from types import FrameType
from typing import Any

from django_microkit.drain import drain_delay, is_draining, start_draining

__all__ = ["child_exit", "on_exit", "on_starting", "post_worker_init"]

_made: list[str] = []


def _setting_directory() -> str:
    """``MULTIPROCESS_DIR`` from the Django settings, if gunicorn can see them."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return ""
    from django_microkit.conf import microkit_settings

    value = microkit_settings.METRICS["MULTIPROCESS_DIR"]
    return value if isinstance(value, str) else ""


def on_starting(server: Any) -> None:
    """Name and empty the multiprocess directory before the workers start."""
    from django_microkit.metrics.multiprocess import (
        export_directory,
        multiprocess_directory,
        prepare_directory,
    )

    path = multiprocess_directory() or _setting_directory()
    if not path and server.cfg.workers > 1:
        path = tempfile.mkdtemp(prefix="microkit-metrics-")
        _made.append(path)
    if path:
        prepare_directory(path)
        export_directory(path)
        server.log.info("Metrics of all workers in %s", path)


def child_exit(server: Any, worker: Any) -> None:
    """Forget the live gauges of a worker that has exited."""
    from django_microkit.metrics.multiprocess import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the multiprocess directory :func:`on_starting` made, if any."""
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    """Drain on SIGTERM before gunicorn's graceful stop of this worker."""
    graceful_stop = signal.getsignal(signal.SIGTERM)
    delay = drain_delay()

    def stop() -> None:
        if callable(graceful_stop):
            graceful_stop(signal.SIGTERM, None)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Once: a SIGTERM sent to the whole process group reaches the worker
        # twice (from the sender and from the master), and must not cut the
        # drain short.
        if is_draining():
            return
        start_draining()
        if delay <= 0:
            stop()
            return
        worker.log.info("Draining for %.1f s before stopping.", delay)
        # gunicorn's own handler ends the worker's loop from any thread.
        timer = threading.Timer(delay, stop)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # As gunicorn does for its own handler: no system call of a request in
    # flight is interrupted by the signal.
    signal.siginterrupt(signal.SIGTERM, False)
