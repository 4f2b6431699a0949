from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.utils.log import configure_logging as configure_django_logging


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Empty the cache before each test. On Redis only this run's keys are
    deleted: ``cache.clear()`` would FLUSHDB the database other runs share."""
    default = caches["default"]
    if isinstance(default, RedisCache):
        client = default._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{default.key_prefix}:*"))
        if keys:
            client.delete(*keys)
    else:
        default.clear()


def pytest_report_header() -> list[str]:
    return [
        f"database: {os.environ.get('DATABASE_URL', 'sqlite in memory')}",
        f"cache: {os.environ.get('REDIS_URL', 'local memory')}",
    ]


@pytest.fixture(scope="session", autouse=True)
def _require_real_services(django_db_setup: None, django_db_blocker: object) -> None:
    """In the integration run, the real services must be used, never skipped."""
    if not os.environ.get("MICROKIT_REQUIRE_SERVICES"):
        return
    assert os.environ.get("DATABASE_URL"), "integration run needs DATABASE_URL"
    assert os.environ.get("REDIS_URL"), "integration run needs REDIS_URL"
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        assert connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    cache.set("microkit-ping", "pong", 5)
    assert cache.get("microkit-ping") == "pong"


# --- Log capture: real lines rendered by django-microkit's formatter ---------


class LogLines:
    """What a handler with :class:`MicrokitFormatter` wrote, line by line."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def text(self) -> str:
        return self.buffer.getvalue()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if line.get("logger") == logger]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """JSON log lines of the test, as a service configured with
    ``logging_config(level="DEBUG")`` writes them."""
    from django_microkit.logging import MicrokitFormatter

    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(MicrokitFormatter(renderer="json", level="DEBUG"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield LogLines(buffer)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


@contextmanager
def restored_logging() -> Iterator[None]:
    """Puts Django's logging (and structlog's defaults) back on the way out."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        configure_django_logging(settings.LOGGING_CONFIG, settings.LOGGING)
        structlog.reset_defaults()


@contextmanager
def applied_logging_config(config: dict[str, Any]) -> Iterator[LogLines]:
    """Applies a whole ``LOGGING`` dict, its handlers writing to a buffer."""
    from django_microkit.logging import MicrokitFormatter

    buffer = io.StringIO()
    with restored_logging():
        logging.config.dictConfig(config)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and isinstance(
                handler.formatter, MicrokitFormatter
            ):
                handler.setStream(buffer)
        yield LogLines(buffer)
