"""A Celery worker process for the task tests: ``python -m tests.celery_worker``.

Writes django-microkit's JSON log lines to standard output, consumes the
queue ``CELERY_TEST_QUEUE`` only, and stops by itself after 60 seconds.
"""

from __future__ import annotations

import threading

import django

django.setup()

from django_microkit.logging import configure_logging  # noqa: E402
from tests.celery_app import app  # noqa: E402

configure_logging(level="INFO")
# Standard output is the log's stream, not a logger's.
app.conf.worker_redirect_stdouts = False


def main() -> None:
    worker = app.Worker(pool="solo", concurrency=1, loglevel="INFO", quiet=True)
    stop = threading.Timer(60, lambda: worker.stop(in_sighandler=False))
    stop.daemon = True
    stop.start()
    worker.start()


if __name__ == "__main__":
    main()
