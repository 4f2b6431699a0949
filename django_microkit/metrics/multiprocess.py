"""prometheus_client's multiprocess mode: one set of counts for all the worker
processes of a server.

Each worker writes its values to memory-mapped files in one directory; a scrape
answered by any worker reads them all (``MultiProcessCollector``). The
directory is named by the ``PROMETHEUS_MULTIPROC_DIR`` environment variable,
which prometheus_client reads when it is first imported: it must be set before
the workers start, and emptied at each start of the server (files of a previous
run would be added to the new counts). The server helpers
(:mod:`django_microkit.gunicorn`, :mod:`django_microkit.uvicorn`) do both, from
the environment or ``MICROKIT["METRICS"]["MULTIPROCESS_DIR"]``, and tell
prometheus_client when a worker has exited.

This module imports prometheus_client only in the functions that need it: a
server's master process imports the module to prepare the directory, which
must be in the environment before prometheus_client is first imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "export_directory",
    "mark_process_dead",
    "metrics_registry",
    "multiprocess_directory",
    "prepare_directory",
]

#: The environment variable prometheus_client reads its directory from.
ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory() -> str | None:
    """The directory this process writes its values to, or ``None`` when
    prometheus_client is in single-process mode."""
    return os.environ.get(ENVIRONMENT_VARIABLE) or None


def export_directory(path: str) -> None:
    """Name ``path`` in the environment, for this process and those it starts.
    Effective only before prometheus_client is first imported in a process."""
    os.environ[ENVIRONMENT_VARIABLE] = path


def prepare_directory(path: str) -> None:
    """Create ``path`` if needed and remove the value files of a previous run
    (only prometheus_client's ``*.db`` files: nothing else is touched)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for values in directory.glob("*.db"):
        values.unlink(missing_ok=True)


def mark_process_dead(pid: int) -> None:
    """Tell prometheus_client that worker ``pid`` has exited: the ``live*``
    gauges forget its values (its counts stay, as they should)."""
    path = multiprocess_directory()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def metrics_registry() -> CollectorRegistry:
    """What a scrape renders: the default registry in single-process mode,
    else a fresh registry reading every process's files."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    path = multiprocess_directory()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry
