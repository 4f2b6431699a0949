from __future__ import annotations

import os

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    default = caches["default"]
    if isinstance(default, RedisCache):
        # Only this run's keys: clear() would flush the Redis database that
        # other runs share.
        client = default._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{default.key_prefix}:*", count=1000))
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
