"""Quick sync checks run in the probe's request thread under WSGI, and the
built-in cache check's sync equivalent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import CacheKeyWarning
from django.core.cache.backends.locmem import LocMemCache
from django.test import AsyncClient, Client, override_settings

from django_microkit.health import run_probe
from django_microkit.health._registry import resolve

HERE = "tests.test_health_inline"
BASE = {"SERVICE_NAME": "tests", "SERVICE_VERSION": "1.0.0"}
POOL = "microkit-health-check"
#: Runs in a row a check passes quickly before it runs in the request thread.
STREAK = 5

#: The thread each run of ``paced`` ran in, and how it behaves next.
THREADS: list[str] = []
PACE: dict[str, Any] = {"seconds": 0.0, "raises": None}


def paced() -> None:
    THREADS.append(threading.current_thread().name)
    time.sleep(PACE["seconds"])
    if PACE["raises"] is not None:
        raise PACE["raises"]


def slow(seconds: float = 0.0) -> None:
    time.sleep(seconds)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    THREADS.clear()
    PACE.update(seconds=0.0, raises=None)
    yield
    PACE.update(seconds=0.0, raises=None)


def microkit(checks: list[Any], **health: Any) -> dict[str, Any]:
    return {**BASE, "HEALTH": {"READINESS_CHECKS": checks, "RESULT_TTL": 0, **health}}


def probe(client: Any = None) -> tuple[int, dict[str, Any]]:
    response = (client or Client()).get("/health/ready")
    return response.status_code, json.loads(response.content)


def entry(timeout: float = 1.0) -> dict[str, Any]:
    return {"check": f"{HERE}.paced", "name": "paced", "timeout": timeout}


def test_a_check_runs_inline_after_a_streak_of_quick_passes() -> None:
    with override_settings(MICROKIT=microkit([entry()])):
        for _ in range(STREAK + 3):
            assert probe()[0] == 200
    here = threading.current_thread().name
    assert [POOL] * STREAK + [here] * 3 == THREADS


def test_python_callers_run_every_check_in_the_pool() -> None:
    with override_settings(MICROKIT=microkit([entry()])):
        for _ in range(STREAK + 3):
            assert run_probe("ready").status == "pass"
    assert THREADS == [POOL] * (STREAK + 3)


def test_a_slow_run_sends_the_check_back_to_the_pool() -> None:
    with override_settings(MICROKIT=microkit([entry(timeout=1.0)])):
        for _ in range(STREAK):
            probe()
        PACE["seconds"] = 0.1  # 10% of its timeout: slow, still a pass
        assert probe()[0] == 200
        PACE["seconds"] = 0.0
        for _ in range(STREAK + 1):
            assert probe()[0] == 200
    here = threading.current_thread().name
    assert [POOL] * STREAK + [here] + [POOL] * STREAK + [here] == THREADS


def test_a_failing_run_sends_the_check_back_to_the_pool() -> None:
    with override_settings(MICROKIT=microkit([entry()])):
        for _ in range(STREAK):
            probe()
        PACE["raises"] = ValueError("down")
        status, document = probe()
        PACE["raises"] = None
        assert status == 503
        assert document["checks"]["paced"][0]["output"] == "error"
        probe()
    here = threading.current_thread().name
    assert [POOL] * STREAK + [here, POOL] == THREADS


def test_an_inline_overrun_is_a_timeout_and_the_check_stays_in_the_pool() -> None:
    checks = [
        entry(timeout=1.0),
        # In the pool, found done only once the overrun ends: one ran past its
        # timeout (a timeout, as the pool reports it), one within it (a pass).
        {"check": f"{HERE}.slow", "name": "late", "timeout": 0.3},
        {"check": f"{HERE}.slow", "name": "on-time", "timeout": 0.6},
    ]
    checks[1]["options"] = {"seconds": 0.5}
    checks[2]["options"] = {"seconds": 0.1}
    with override_settings(MICROKIT=microkit(checks)):
        for _ in range(STREAK):
            probe()
        PACE["seconds"] = 1.2
        start = time.perf_counter()
        status, document = probe()
        elapsed = time.perf_counter() - start
        PACE["seconds"] = 0.0
        for _ in range(STREAK + 1):
            probe()
    assert status == 503
    assert elapsed >= 1.2  # Python cannot stop a thread, the request's neither
    paced = document["checks"]["paced"][0]
    assert (paced["status"], paced["output"], paced["observedValue"]) == (
        "fail",
        "timeout",
        1000.0,
    )
    assert document["checks"]["late"][0]["output"] == "timeout"
    assert document["checks"]["on-time"][0]["status"] == "pass"
    here = threading.current_thread().name
    assert [POOL] * STREAK + [here] + [POOL] * (STREAK + 1) == THREADS


def test_inline_checks_off_keeps_every_run_in_the_pool() -> None:
    with override_settings(MICROKIT=microkit([entry()], INLINE_CHECKS=False)):
        for _ in range(STREAK + 3):
            assert probe()[0] == 200
    assert THREADS == [POOL] * (STREAK + 3)


def test_asgi_rounds_keep_every_run_in_the_pool() -> None:
    client = AsyncClient()
    with override_settings(MICROKIT=microkit([entry()])):
        for _ in range(STREAK + 3):
            response = async_to_sync(client.get)("/health/ready")
            assert response.status_code == 200
    assert THREADS == [POOL] * (STREAK + 3)


def test_a_run_still_under_way_in_the_pool_is_joined_not_run_inline() -> None:
    with override_settings(MICROKIT=microkit([entry(timeout=0.2)])):
        for _ in range(STREAK):
            probe()
        # An ASGI round leaves a run hung in the pool...
        PACE["seconds"] = 0.6
        response = async_to_sync(AsyncClient().get)("/health/ready")
        assert response.status_code == 503
        PACE["seconds"] = 0.0
        # ... which the next round under WSGI waits for, rather than run the
        # check beside it in the request thread.
        status, document = probe()
    assert status == 503
    assert document["checks"]["paced"][0]["output"] == "timeout"
    assert THREADS == [POOL] * (STREAK + 1)


def test_an_interruption_inline_is_raised_and_sends_the_check_to_the_pool() -> None:
    with override_settings(MICROKIT=microkit([entry()])):
        for _ in range(STREAK):
            run_probe("ready", inline=True)
        PACE["raises"] = KeyboardInterrupt()
        with pytest.raises(KeyboardInterrupt):
            run_probe("ready", inline=True)
        PACE["raises"] = None
        assert run_probe("ready", inline=True).status == "pass"
    here = threading.current_thread().name
    assert [POOL] * STREAK + [here, POOL] == THREADS


# --- the cache check's sync equivalent ------------------------------------------


class Faulty(LocMemCache):
    """A local-memory cache whose ``set`` raises the error its LOCATION names."""

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.error = name

    def set(self, *args: Any, **kwargs: Any) -> None:
        errors: dict[str, Exception] = {
            "ValueError": ValueError("bad value"),
            "ConnectionError": ConnectionError("refused"),
            "CacheKeyWarning": CacheKeyWarning("bad key"),
        }
        raise errors[self.error]


class Hanging(LocMemCache):
    """A local-memory cache whose ``set`` takes 0.6 s, counting its calls."""

    calls = 0

    def set(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls += 1
        time.sleep(0.6)


def test_a_hung_cache_check_is_joined_in_the_pool_not_run_again() -> None:
    Hanging.calls = 0
    entries = [{"check": "cache", "timeout": 0.2}]
    cache = _cache(f"{HERE}.Hanging", "health-hanging")
    with override_settings(CACHES={"default": cache}, MICROKIT=microkit(entries)):
        outputs = [probe()[1]["checks"]["cache:default"][0]["output"] for _ in range(2)]
    assert outputs == ["timeout", "timeout"]
    assert Hanging.calls == 1


class NativeAsync(LocMemCache):
    """A cache with async methods of its own."""

    async def aset(self, *args: Any, **kwargs: Any) -> None:
        self.set(*args, **kwargs)

    async def aget(self, *args: Any, **kwargs: Any) -> Any:
        return self.get(*args, **kwargs)


def _cache(backend: str, location: str = "") -> dict[str, Any]:
    return {"BACKEND": backend, "LOCATION": location}


LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.parametrize(
    ("cache", "status", "detail"),
    [
        (_cache(LOCMEM, "health-inline"), "pass", None),
        (_cache("django.core.cache.backends.dummy.DummyCache"), "fail", "does not"),
        (_cache(f"{HERE}.Faulty", "ValueError"), "fail", "ValueError"),
        (_cache(f"{HERE}.Faulty", "ConnectionError"), "fail", "Connection Error"),
        (_cache(f"{HERE}.Faulty", "CacheKeyWarning"), "fail", "Cache key warning"),
        (_cache(f"{HERE}.NativeAsync", "health-native"), "pass", None),
    ],
)
def test_the_cache_check_reports_the_same_under_wsgi_and_asgi(
    cache: dict[str, Any], status: str, detail: str | None
) -> None:
    """Under WSGI the cache check runs its sync equivalent, in the pool and
    then in the request thread; under ASGI django-health-check's async check."""
    settings = microkit(["cache"], SHOW_DETAILS=True)
    answers = []
    with override_settings(CACHES={"default": cache}, MICROKIT=settings):
        for get in [Client().get] * (STREAK + 1) + [async_to_sync(AsyncClient().get)]:
            document = json.loads(get("/health/ready").content)
            answers.append(document["checks"]["cache:default"][0])
    for answer in answers:
        assert answer["status"] == status
        assert detail is None or detail in answer["output"]
    assert len({answer.get("output", "")[:20] for answer in answers}) == 1


def test_the_sync_cache_check_is_for_backends_with_django_async_methods() -> None:
    caches = {
        "default": _cache(LOCMEM, "health-inline"),
        "native": _cache(f"{HERE}.NativeAsync", "health-native"),
    }
    with override_settings(CACHES=caches):
        default, native = resolve("cache", 1.0)
        assert (default.is_async, native.is_async) == (True, True)
        assert default.sync_call is not None
        assert native.sync_call is None
        # Its alias gone (the checks are built again then): unavailable.
        with (
            override_settings(CACHES={"other": caches["default"]}),
            pytest.raises(Exception, match="Cache alias does not exist"),
        ):
            default.sync_call()
