from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from io import StringIO
from typing import TYPE_CHECKING, Any, TypedDict

import dj_database_url
import pytest
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path, resolve, reverse

from django_microkit.health import (
    PROBES,
    HealthReport,
    arun_probe,
    register_check,
    run_probe,
    runner,
)
from django_microkit.health._registry import REGISTRY
from django_microkit.health.checks import check_health, check_health_deploy
from django_microkit.health.views import (
    health_urlpatterns,
    probe_route,
    server_mode_route,
    show_details,
)
from django_microkit.logging import access_log_at_debug
from tests.conftest import LogLines
from tests.testapp import health_checks
from tests.testapp.health_checks import RUNS, SEEN

if TYPE_CHECKING:
    from django.test.client import (
        _MonkeyPatchedASGIResponse,
        _MonkeyPatchedWSGIResponse,
    )

    #: A test client's answer, through the WSGI or the ASGI handler.
    ClientResponse = _MonkeyPatchedWSGIResponse | _MonkeyPatchedASGIResponse
    #: The ``get`` fixture: a GET through one of the two.
    Get = Callable[..., ClientResponse]

P = health_checks.P
BASE = {"SERVICE_NAME": "tests", "SERVICE_VERSION": "1.0.0"}
HEALTH_JSON = "application/health+json"


def microkit(**health: Any) -> dict[str, Any]:
    return {**BASE, "HEALTH": health}


@pytest.fixture(autouse=True)
def _fresh_rounds() -> Iterator[None]:
    # A settings change forgets rounds and reports, on the way in and out.
    from django.conf import settings

    RUNS.clear()
    SEEN.clear()
    with override_settings(MICROKIT=settings.MICROKIT):
        yield


@pytest.fixture(params=["wsgi", "asgi"])
def get(request: pytest.FixtureRequest) -> Get:
    """GET through the sync test client (WSGI path) or the async one (ASGI)."""
    if request.param == "wsgi":
        return Client().get
    return async_to_sync(AsyncClient().get)


def body(response: ClientResponse) -> dict[str, Any]:
    assert response["Content-Type"] == HEALTH_JSON
    assert response["Cache-Control"] == "no-store"
    document: dict[str, Any] = json.loads(response.content)
    return document


def statuses(response: ClientResponse) -> dict[str, str]:
    return {
        name: entries[0]["status"] for name, entries in body(response)["checks"].items()
    }


# --- the endpoints --------------------------------------------------------------------


@pytest.mark.django_db
def test_all_pass(get: Get) -> None:
    response = get("/health/ready")
    assert response.status_code == 200
    document = body(response)
    assert document["status"] == "pass"
    assert document["serviceId"] == "tests"
    assert statuses(response) == {"database:default": "pass", "cache:default": "pass"}
    entry = document["checks"]["database:default"][0]
    assert sorted(entry) == [
        "componentType",
        "observedUnit",
        "observedValue",
        "status",
        "time",
    ]
    assert entry["componentType"] == "datastore"
    assert entry["observedUnit"] == "ms"
    assert isinstance(entry["observedValue"], float)
    assert entry["time"].endswith("Z")


@pytest.mark.parametrize("probe", ["live", "startup"])
def test_liveness_and_startup_check_nothing_by_default(get: Get, probe: str) -> None:
    with override_settings(MICROKIT=BASE):
        response = get(f"/health/{probe}")
    assert response.status_code == 200
    document = body(response)
    assert document["status"] == "pass"
    # The startup probe runs the check registered for it by the test app.
    expected = {"Migrations": "pass"} if probe == "startup" else {}
    assert statuses(response) == expected


def test_no_service_name_no_service_id() -> None:
    with override_settings(MICROKIT={"HEALTH": {"READINESS_CHECKS": [f"{P}.ok"]}}):
        document = body(Client().get("/health/ready"))
    assert list(document) == ["status", "checks"]


def _unreachable(kind: str) -> dj_database_url.DBConfig:
    if kind == "postgres":
        return dj_database_url.parse("postgres://nobody@127.0.0.1:1/nothing")
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": "/nonexistent/dir/db"}


@pytest.fixture(params=["postgres", "sqlite"])
def unreachable_database(
    request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any
) -> Iterator[str]:
    """A database alias whose server is not there (a closed port).

    Database access is opened outside a test transaction: the checks use their
    own connections, from their own threads, to every alias.
    """
    original = connections.settings
    connections.settings = connections.configure_settings(
        {**original, "unreachable": _unreachable(request.param)}
    )
    try:
        with django_db_blocker.unblock():
            yield "unreachable"
    finally:
        connections.settings = original


def test_unreachable_database_fails_readiness_not_liveness(
    get: Get, unreachable_database: str
) -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=["database"])):
        ready = get("/health/ready")
        live = get("/health/live")
    assert ready.status_code == 503
    assert body(ready)["status"] == "fail"
    assert statuses(ready) == {
        "database:default": "pass",
        "database:unreachable": "fail",
    }
    assert body(ready)["checks"]["database:unreachable"][0]["output"] == "unavailable"
    assert live.status_code == 200
    assert body(live)["status"] == "pass"


@pytest.mark.parametrize("check", [f"{P}.sleep", f"{P}.async_sleep"])
def test_a_hung_check_times_out(get: Get, check: str) -> None:
    entry = {"check": check, "options": {"seconds": 3}, "timeout": 0.3}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry, f"{P}.ok"])):
        start = time.perf_counter()
        response = get("/health/ready")
        elapsed = time.perf_counter() - start
    assert response.status_code == 503
    name = check.rpartition(".")[2]
    assert body(response)["checks"][name] == [
        {
            "status": "fail",
            "componentType": "component",
            "observedValue": 300.0,
            "observedUnit": "ms",
            "time": body(response)["checks"][name][0]["time"],
            "output": "timeout",
        }
    ]
    assert statuses(response)["ok"] == "pass"
    assert elapsed < 0.3 + 1.0


def test_each_check_is_held_to_its_own_deadline(
    get: Get,
) -> None:
    # The short check ends after its own deadline but long before the other
    # check does: it still reports a timeout, and the probe waits for neither
    # longer than its timeout.
    entries = [
        {"check": f"{P}.async_sleep", "options": {"seconds": 0.5}, "timeout": 1.5},
        {"check": f"{P}.sleep", "options": {"seconds": 0.3}, "timeout": 0.1},
    ]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=entries)):
        start = time.perf_counter()
        response = get("/health/ready")
        elapsed = time.perf_counter() - start
    assert statuses(response) == {"async_sleep": "pass", "sleep": "fail"}
    assert body(response)["checks"]["sleep"][0]["output"] == "timeout"
    assert elapsed < 1.5


def test_the_pool_starts_a_thread_only_when_none_is_idle() -> None:
    def pool_threads() -> int:
        names = [thread.name for thread in threading.enumerate()]
        return names.count("microkit-health-check")

    checks = [f"{P}.ok", f"{P}.counted", f"{P}.where_am_i"]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=checks, RESULT_TTL=0)):
        before = pool_threads()
        for _ in range(10):
            assert run_probe("ready").status == "pass"
    assert pool_threads() - before <= len(checks)


def test_default_timeout_applies() -> None:
    entry = {"check": f"{P}.sleep", "options": {"seconds": 3}}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], TIMEOUT=0.2)):
        start = time.perf_counter()
        response = Client().get("/health/ready")
    assert time.perf_counter() - start < 0.2 + 1.0
    assert body(response)["checks"]["sleep"][0]["output"] == "timeout"


def test_checks_run_concurrently(get: Get) -> None:
    # Two sync checks share the pool, an async one runs beside them.
    checks = [f"{P}.sleep", f"{P}.sleep", f"{P}.async_sleep"]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=checks)):
        start = time.perf_counter()
        response = get("/health/ready")
        elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert [
        entry["status"]
        for entries in body(response)["checks"].values()
        for entry in entries
    ] == ["pass", "pass", "pass"]
    assert 1.0 <= elapsed < 2.2


def test_results_are_reused_within_ttl() -> None:
    entry = {"check": f"{P}.counted", "name": "counted"}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=60)):
        first = Client().get("/health/ready")
        second = async_to_sync(AsyncClient().get)("/health/ready")
        assert RUNS["counted"] == 1
        assert first.content == second.content
        assert run_probe("ready", fresh=True).status == "pass"
        assert RUNS["counted"] == 2


def test_ttl_zero_runs_every_probe() -> None:
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[f"{P}.counted"], RESULT_TTL=0)
    ):
        for _ in range(3):
            assert Client().get("/health/ready").status_code == 200
    assert RUNS["counted"] == 3


def test_ttl_expires() -> None:
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[f"{P}.counted"], RESULT_TTL=0.1)
    ):
        run_probe("ready")
        run_probe("ready")
        time.sleep(0.15)
        run_probe("ready")
    assert RUNS["counted"] == 2


def test_concurrent_probes_share_one_round() -> None:
    entry = {"check": f"{P}.counted", "options": {"seconds": 0.5}}
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def probe() -> None:
        barrier.wait()
        codes.append(Client().get("/health/ready").status_code)

    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        threads = [threading.Thread(target=probe) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert codes == [200] * 4
    assert RUNS["counted"] == 1


def test_concurrent_async_probes_share_one_round() -> None:
    async def probes() -> list[HealthReport]:
        return await asyncio.gather(*(arun_probe("ready") for _ in range(5)))

    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[f"{P}.async_counted"], RESULT_TTL=0)
    ):
        reports = async_to_sync(probes)()
    assert {report.status for report in reports} == {"pass"}
    assert len({id(report) for report in reports}) == 1
    assert RUNS["async_counted"] == 1


def test_a_hung_sync_check_is_joined_not_run_again(
    get: Get,
) -> None:
    entry = {
        "check": f"{P}.counted",
        "options": {"key": "hung", "seconds": 1.5},
        "timeout": 0.2,
    }
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        for _ in range(3):
            assert body(get("/health/ready"))["checks"]["counted"][0]["output"] == (
                "timeout"
            )
    assert RUNS["hung"] == 1


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        ({}, False),
        ({"SHOW_DETAILS": True}, True),
        ({"SHOW_DETAILS": False}, False),
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_details_are_hidden_unless_configured(
    get: Get, settings: dict[str, Any], shown: bool, debug: bool
) -> None:
    checks = [f"{P}.unavailable", f"{P}.async_unavailable", f"{P}.crashes"]
    if debug and "SHOW_DETAILS" not in settings:
        shown = True  # DEBUG shows them unless SHOW_DETAILS says otherwise
    with override_settings(
        DEBUG=debug, MICROKIT=microkit(READINESS_CHECKS=checks, **settings)
    ):
        response = get("/health/ready")
    assert response.status_code == 503
    outputs = {
        name: entries[0]["output"] for name, entries in body(response)["checks"].items()
    }
    if shown:
        assert outputs == {
            "unavailable": "connection to secret-host.internal:5432 refused",
            "async_unavailable": "connection to secret-host.internal:6379 refused",
            "crashes": "ValueError: password=hunter2",
        }
    else:
        assert outputs == {
            "unavailable": "unavailable",
            "async_unavailable": "unavailable",
            "crashes": "error",
        }
        assert b"secret-host" not in response.content
        assert b"hunter2" not in response.content


def test_non_critical_failure_warns_with_200(get: Get) -> None:
    checks = [
        {"check": f"{P}.unavailable", "critical": False},
        {"check": f"{P}.async_sleep", "critical": False, "timeout": 0.1},
        f"{P}.ok",
    ]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=checks)):
        response = get("/health/ready")
    assert response.status_code == 200
    assert body(response)["status"] == "warn"
    assert statuses(response) == {
        "unavailable": "warn",
        "async_sleep": "warn",
        "ok": "pass",
    }
    assert body(response)["checks"]["async_sleep"][0]["output"] == "timeout"


@pytest.mark.parametrize(
    ("check", "status", "output", "code"),
    [
        ("degraded", "warn", "warning", 200),
        ("returns_false", "fail", "failed", 503),
        ("returns_coroutine", "fail", "error", 503),
        ("crashes", "fail", "error", 503),
    ],
)
def test_what_a_check_reports(check: str, status: str, output: str, code: int) -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[f"{P}.{check}"])):
        response = Client().get("/health/ready")
    assert response.status_code == code
    assert body(response)["status"] == status
    assert body(response)["checks"][check][0]["output"] == output


@pytest.mark.parametrize(
    ("entry", "name", "component_type"),
    [
        (f"{P}.Pinger", "pinger:primary", "component"),
        ({"check": f"{P}.Pinger", "options": {"alias": "b"}}, "pinger:b", "component"),
        (f"{P}.PINGER", "pinger:secondary", "component"),
        (f"{P}.AsyncPinger", "asyncpinger", "component"),
        (f"{P}.CALLABLE", "Callable", "component"),
        ({"check": f"{P}.ok", "name": "mine"}, "mine", "component"),
        ("registered", "registered", "component"),
        ({"check": "registered", "critical": False}, "registered", "component"),
        ("cache:default", "cache:default", "datastore"),
        (
            {"check": "cache", "options": {"key_prefix": "x"}},
            "cache:default",
            "datastore",
        ),
    ],
)
def test_ways_to_name_a_check(
    get: Get, entry: Any, name: str, component_type: str
) -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry])):
        response = get("/health/ready")
    assert response.status_code == 200, response.content
    assert list(body(response)["checks"]) == [name]
    assert body(response)["checks"][name][0]["componentType"] == component_type


def test_storage_check(get: Get, tmp_path: Any) -> None:
    with override_settings(
        MEDIA_ROOT=str(tmp_path),
        MICROKIT=microkit(READINESS_CHECKS=["storage:default"]),
    ):
        response = get("/health/ready")
    assert statuses(response) == {"storage:default": "pass"}
    assert [path.name for path in tmp_path.iterdir()] == ["health_check_storage_test"]


def test_failing_class_check_with_options() -> None:
    entry = {"check": f"{P}.Pinger", "options": {"fail": True}}
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[entry], SHOW_DETAILS=True)
    ):
        response = Client().get("/health/ready")
    assert response.status_code == 503
    assert body(response)["checks"]["pinger:primary"][0]["output"] == "primary is down"


def test_registered_check_keeps_its_settings() -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=["registered-soft"])):
        start = time.perf_counter()
        response = Client().get("/health/ready")
    assert time.perf_counter() - start < 1.0
    assert response.status_code == 200
    entry = body(response)["checks"]["registered-soft"][0]
    assert (entry["status"], entry["output"], entry["observedValue"]) == (
        "warn",
        "timeout",
        200.0,
    )


def test_registered_for_a_probe_joins_it() -> None:
    with override_settings(MICROKIT=microkit(STARTUP_CHECKS=[f"{P}.ok"])):
        response = Client().get("/health/startup")
    assert statuses(response) == {"ok": "pass", "Migrations": "pass"}
    assert body(response)["checks"]["Migrations"][0]["componentType"] == "system"
    assert RUNS["migrations"] == 1


@pytest.fixture
def isolated_registry() -> Iterator[None]:
    # The probes forget the checks they resolved when the autouse fixture's
    # settings are restored, after this.
    saved = dict(REGISTRY)
    try:
        yield
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)


@pytest.mark.usefixtures("isolated_registry")
def test_register_check_without_arguments() -> None:
    @register_check
    async def payments() -> None:
        await asyncio.sleep(0)

    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[])):
        response = Client().get("/health/ready")
        assert statuses(response) == {"payments": "pass"}
        # Named in settings too, it still runs once.
        with override_settings(MICROKIT=microkit(READINESS_CHECKS=["payments"])):
            assert statuses(Client().get("/health/ready")) == {"payments": "pass"}


class RegisterOptions(TypedDict, total=False):
    """Keywords for ``register_check(name, ...)``: typed, so that mypy picks
    the overload that returns a decorator."""

    probes: tuple[str, ...]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probes": ("ready", "readiness")}, "Unknown probe 'readiness'"),
        ({}, "'database' is the name of a built-in check."),
    ],
)
def test_register_check_refuses(kwargs: RegisterOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register_check("database", **kwargs)(health_checks.ok)
    assert "database" not in REGISTRY


def test_wsgi_and_asgi_each_use_their_own_path() -> None:
    checks = [f"{P}.where_am_i", f"{P}.async_where_am_i"]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=checks, RESULT_TTL=0)):
        assert resolve("/health/ready").func.__name__ == "health_view_ready"
        Client().get("/health/ready")
        assert SEEN["sync"].startswith("microkit-health-")
        # Under WSGI async checks run on the process's own event loop.
        assert SEEN["async"] == "microkit-health-loop"

        async def asgi() -> str:
            await AsyncClient().get("/health/ready")
            return resolve("/health/ready").func.__name__

        assert async_to_sync(asgi)() == "async_health_view_ready"
        assert SEEN["sync"].startswith("microkit-health-")
        # Under ASGI they run on the server's loop.
        assert SEEN["async"] != "microkit-health-loop"


@pytest.mark.parametrize("method", ["post", "put", "delete", "options"])
def test_only_get_and_head(method: str) -> None:
    response = getattr(Client(), method)("/health/live")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response["Cache-Control"] == "no-store"
    response = async_to_sync(getattr(AsyncClient(), method))("/health/live")
    assert response.status_code == 405


@override_settings(
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ROOT_URLCONF="tests.testapp.health_urls",
)
@pytest.mark.parametrize("path", ["/health/live", "/.well-known/service-info"])
def test_login_required_middleware_lets_probes_through(path: str) -> None:
    assert Client().get(path).status_code == 200
    assert Client().get("/private").status_code == 302  # the middleware is on


def test_server_mode_route_picks_the_view_of_the_server() -> None:
    def version(request: Any) -> HttpResponse:
        return HttpResponse("sync")

    async def async_version(request: Any) -> HttpResponse:
        return HttpResponse("async")

    pattern = server_mode_route("version", version, async_version, name="version")
    assert (pattern.name, str(pattern.pattern)) == ("version", "version")
    match = pattern.resolve("version")
    assert match is not None and match.func is version

    async def on_a_loop() -> Any:
        match = pattern.resolve("version")
        return match and match.func

    assert async_to_sync(on_a_loop)() is async_version
    assert pattern.resolve("versions") is None
    # Open to a probe, which has no user.
    for view in (version, async_version):
        # login_not_required sets the attribute, which no function type declares.
        assert view.login_required is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("details", "debug", "shown"),
    [
        (None, False, False),
        (None, True, True),
        (True, False, True),
        (False, True, False),
    ],
)
def test_show_details(details: bool | None, debug: bool, shown: bool) -> None:
    with override_settings(DEBUG=debug, MICROKIT=microkit(SHOW_DETAILS=details)):
        assert show_details() is shown


def test_head() -> None:
    assert Client().head("/health/live").status_code == 200


def test_url_prefix_is_configurable() -> None:
    with override_settings(MICROKIT=microkit(URL_PREFIX="probes/")):
        routes = [str(pattern.pattern) for pattern in health_urlpatterns()]
    assert routes == ["probes/live", "probes/ready", "probes/startup"]
    with override_settings(MICROKIT=microkit(URL_PREFIX="")):
        routes = [str(pattern.pattern) for pattern in health_urlpatterns()]
    assert routes == ["live", "ready", "startup"]


def test_probe_views_accept_atomic_requests() -> None:
    databases = {
        alias: {**connections.settings[alias], "ATOMIC_REQUESTS": True}
        for alias in connections
    }
    original = connections.settings
    connections.settings = databases
    try:
        with override_settings(MICROKIT=microkit(READINESS_CHECKS=[f"{P}.ok"])):
            assert Client().get("/health/ready").status_code == 200
            response = async_to_sync(AsyncClient().get)("/health/ready")
            assert response.status_code == 200
    finally:
        connections.settings = original


# --- the Python API -------------------------------------------------------------------


def test_run_probe_rejects_unknown_probe() -> None:
    with pytest.raises(ValueError, match="Unknown probe 'readiness'"):
        run_probe("readiness")


def test_misconfiguration_at_runtime_raises_and_does_not_stick() -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=["no.such.check"])):
        with pytest.raises(ImproperlyConfigured, match="'no.such.check' is unknown"):
            run_probe("ready")
        with pytest.raises(ImproperlyConfigured, match="'no.such.check' is unknown"):
            async_to_sync(arun_probe)("ready")
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[f"{P}.ok"])):
        assert run_probe("ready").status == "pass"
        assert async_to_sync(arun_probe)("ready", fresh=True).status == "pass"


def test_report() -> None:
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[f"{P}.ok", f"{P}.unavailable"])
    ):
        report = run_probe("ready")
    assert report.probe == "ready"
    assert report.status == "fail"
    assert report.http_status == 503
    assert [(r.name, r.status, r.critical) for r in report.checks] == [
        ("ok", "pass", True),
        ("unavailable", "fail", True),
    ]
    assert report.checks[1].detail == "connection to secret-host.internal:5432 refused"
    assert report.as_document()["checks"]["unavailable"][0]["output"] == "unavailable"
    assert PROBES == ("live", "ready", "startup")


def test_status_changes_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="django_microkit.health")
    failing = microkit(READINESS_CHECKS=[f"{P}.unavailable", f"{P}.ok"], RESULT_TTL=0)
    with override_settings(MICROKIT=failing):
        run_probe("ready")
        run_probe("ready")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Health check unavailable: fail "
            "(connection to secret-host.internal:5432 refused).",
        )
    ]
    caplog.clear()
    recovering = {"check": f"{P}.fails_once", "name": "ok"}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[recovering])):
        run_probe("ready")  # fails: a warning, as above
        caplog.clear()
        run_probe("ready", fresh=True)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Health check ok passes again.")
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_worker_starts_its_own_threads() -> None:
    config = microkit(READINESS_CHECKS=[f"{P}.ok", f"{P}.async_ok"], TIMEOUT=1)
    with override_settings(MICROKIT=config):
        assert run_probe("ready").status == "pass"  # the parent's pool and loop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # multi-threaded fork
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                code = 0 if run_probe("ready", fresh=True).status == "pass" else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- the management command -----------------------------------------------------------


def command(*args: str) -> tuple[str, int]:
    """The command's output and exit status."""
    out = StringIO()
    try:
        call_command("microkit_health", *args, stdout=out, no_color=True)
    except CommandError as error:
        assert str(error).endswith(" probe fails.")
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


@pytest.mark.django_db
def test_command_passes() -> None:
    out, code = command()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "TIME", "OUTPUT"]
    assert lines[1].split()[:2] == ["database:default", "pass"]
    assert lines[2].split()[:2] == ["cache:default", "pass"]
    assert lines[-1] == "ready: pass (HTTP 200)"


def test_command_fails_with_exit_code_1() -> None:
    checks = [
        f"{P}.ok",
        {"check": f"{P}.degraded", "critical": False},
        f"{P}.unavailable",
    ]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=checks)):
        out, code = command()
        assert code == 1
        rows = [line.split(None, 4) for line in out.splitlines()[1:4]]
        assert [(row[0], row[1], row[-1]) for row in rows] == [
            ("ok", "pass", "ms"),
            ("degraded", "warn", "warning"),
            ("unavailable", "fail", "unavailable"),
        ]
        assert out.splitlines()[-1] == "ready: fail (HTTP 503)"
        out, code = command("--details")
        assert "connection to secret-host.internal:5432 refused" in out
        assert code == 1
    # Without --details the command follows SHOW_DETAILS, then DEBUG, as probes do.
    with override_settings(
        DEBUG=True, MICROKIT=microkit(READINESS_CHECKS=[f"{P}.unavailable"])
    ):
        out, code = command()
    assert "connection to secret-host.internal:5432 refused" in out
    assert code == 1


def test_command_other_probes_and_json() -> None:
    with override_settings(MICROKIT=microkit(LIVENESS_CHECKS=[])):
        out, code = command("--probe", "live")
    assert (out, code) == (
        "CHECK  STATUS  TIME  OUTPUT\n(no checks)\nlive: pass (HTTP 200)\n",
        0,
    )
    with override_settings(
        MICROKIT=microkit(STARTUP_CHECKS=[f"{P}.unavailable"], SHOW_DETAILS=True)
    ):
        out, code = command("--probe", "startup", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["status"] == "fail"
    assert document["checks"]["unavailable"][0]["output"] == (
        "connection to secret-host.internal:5432 refused"
    )


def test_command_runs_fresh_checks() -> None:
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=[f"{P}.counted"], RESULT_TTL=60)
    ):
        run_probe("ready")
        command()
    assert RUNS["counted"] == 2


# --- system checks --------------------------------------------------------------------


def check_messages(deploy: bool = False, **health: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with override_settings(MICROKIT=microkit(**health)):
        for message in run_checks(include_deployment_checks=deploy):
            if (message.id or "").startswith("django_microkit.") and (message.id or "")[
                -3:-1
            ] == "04":
                found.setdefault(message.id or "", []).append(
                    f"{message.msg} {message.hint}"
                )
    return found


def test_valid_configuration_is_clean() -> None:
    assert (
        check_messages(
            READINESS_CHECKS=[
                "database",
                "cache:default",
                {"check": f"{P}.Pinger", "options": {"alias": "x"}, "timeout": 1},
                {"check": "registered", "critical": False, "name": "reg"},
                {"check": "redis", "options": {"url": "redis://127.0.0.1:1/0"}},
                "mail",
                "dns",
            ],
            LIVENESS_CHECKS=[f"{P}.ok"],
            STARTUP_CHECKS=("storage",),
            TIMEOUT=0.5,
            RESULT_TTL=0,
            URL_PREFIX="",
        )
        == {}
    )


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        (5, "Health check entry 5 is neither a string nor a dict."),
        ({"name": "x"}, "'check' is missing"),
        ({"check": "cache", "critcal": False}, "unknown key 'critcal'"),
        ({"check": "cache", "critical": "no"}, "'critical' must be bool"),
        ({"check": "cache", "timeout": True}, "'timeout' must be int or float"),
        ({"check": "cache", "options": []}, "'options' must be Mapping"),
    ],
)
def test_e040_malformed_entry(entry: Any, text: str) -> None:
    found = check_messages(READINESS_CHECKS=[entry])
    assert list(found) == ["django_microkit.E040"]
    assert text in found["django_microkit.E040"][0]


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("databse", "Did you mean 'database'?"),
        ("no.such.module.check", "not an importable dotted path"),
        (f"{P}.nothing_here", "not an importable dotted path"),
        ("mail:backup", "'mail' takes no alias"),
    ],
)
def test_e041_unknown_check(entry: str, text: str) -> None:
    found = check_messages(STARTUP_CHECKS=[entry])
    assert list(found) == ["django_microkit.E041"]
    assert text in found["django_microkit.E041"][0]
    assert "MICROKIT['HEALTH']['STARTUP_CHECKS']" in found["django_microkit.E041"][0]


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        (f"{P}.NOT_A_CHECK", "is int, not a check"),
        ({"check": f"{P}.Pinger", "options": {"nope": 1}}, "cannot be created"),
        ("health_check.HealthCheck", "cannot be created"),
        ("redis", "cannot be created with options {}"),
    ],
)
def test_e042_not_a_check(entry: Any, text: str) -> None:
    found = check_messages(READINESS_CHECKS=[entry])
    assert list(found) == ["django_microkit.E042"]
    assert text in found["django_microkit.E042"][0]


@pytest.mark.parametrize(
    "health",
    [
        {"TIMEOUT": 0},
        {"TIMEOUT": -1.5},
        {"READINESS_CHECKS": [{"check": "cache", "timeout": 0}]},
    ],
)
def test_e043_timeout_not_positive(health: dict[str, Any]) -> None:
    assert list(check_messages(**health)) == ["django_microkit.E043"]


def test_e044_negative_ttl() -> None:
    found = check_messages(RESULT_TTL=-1)
    assert list(found) == ["django_microkit.E044"]


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("database:replica", "Configured aliases: ['default']."),
        ("cache:defualt", "Did you mean 'default'?"),
        ("storage:media", "not configured"),
    ],
)
def test_e045_unknown_alias(entry: str, text: str) -> None:
    found = check_messages(READINESS_CHECKS=[entry])
    assert list(found) == ["django_microkit.E045"]
    assert text in found["django_microkit.E045"][0]


@pytest.mark.parametrize("prefix", ["/health/", "health"])
def test_e046_url_prefix(prefix: str) -> None:
    assert list(check_messages(URL_PREFIX=prefix)) == ["django_microkit.E046"]


def test_w040_duplicate_check() -> None:
    found = check_messages(READINESS_CHECKS=["database", "database:default"])
    assert list(found) == ["django_microkit.W040"]
    assert "['database:default']" in found["django_microkit.W040"][0]


def test_w041_dependency_in_liveness() -> None:
    found = check_messages(LIVENESS_CHECKS=["cache", f"{P}.ok"])
    assert list(found) == ["django_microkit.W041"]


def test_w042_details_shown_in_production() -> None:
    assert list(check_messages(deploy=True, SHOW_DETAILS=True)) == [
        "django_microkit.W042"
    ]
    assert check_messages(deploy=True, SHOW_DETAILS=None) == {}
    assert check_messages(deploy=False, SHOW_DETAILS=True) == {}


def test_the_check_functions() -> None:
    with override_settings(MICROKIT=microkit(TIMEOUT=0, SHOW_DETAILS=True)):
        assert [message.id for message in check_health()] == ["django_microkit.E043"]
        assert [message.id for message in check_health_deploy()] == [
            "django_microkit.W042"
        ]
    assert check_health() == []
    assert check_health_deploy() == []


def test_wrong_types_are_left_to_e003() -> None:
    found = check_messages(TIMEOUT="2", RESULT_TTL=None, READINESS_CHECKS="cache")
    assert found == {}


# --- integration: real PostgreSQL and Redis -------------------------------------------

needs_services = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")),
    reason="needs DATABASE_URL and REDIS_URL (the integration run)",
)


@pytest.mark.integration
@needs_services
@pytest.mark.django_db
def test_real_postgres_and_redis(get: Get) -> None:
    assert connection.vendor == "postgresql"
    assert type(caches["default"]).__name__ == "RedisCache"
    redis = {"check": "redis", "options": {"url": os.environ["REDIS_URL"]}}
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=["database", "cache", redis])
    ):
        response = get("/health/ready")
    assert response.status_code == 200, response.content
    assert statuses(response) == {
        "database:default": "pass",
        "cache:default": "pass",
        "redis": "pass",
    }


@pytest.fixture
def redis_on_a_closed_port() -> Iterator[str]:
    closed = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
    with override_settings(CACHES={**_caches_setting(), "closed": closed}):
        yield "redis://127.0.0.1:1/0"


def _caches_setting() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.CACHES)


@pytest.mark.django_db
def test_redis_on_a_closed_port_fails_readiness(
    get: Get, redis_on_a_closed_port: str
) -> None:
    redis = {"check": "redis", "options": {"url": redis_on_a_closed_port}}
    with override_settings(
        MICROKIT=microkit(READINESS_CHECKS=["database", "cache", redis])
    ):
        response = get("/health/ready")
        live = get("/health/live")
    assert response.status_code == 503
    assert statuses(response) == {
        "database:default": "pass",
        "cache:default": "pass",
        "cache:closed": "fail",
        "redis": "fail",
    }
    assert live.status_code == 200


# --- OpenAPI --------------------------------------------------------------------------


def test_probes_are_not_in_the_schema_by_default() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert [path for path in schema["paths"] if "health" in path] == []
    schema = SchemaGenerator(patterns=health_urlpatterns()).get_schema(
        request=None, public=True
    )
    assert schema["paths"] == {}


def test_probes_in_the_schema_when_asked() -> None:
    from drf_spectacular.generators import SchemaGenerator
    from openapi_spec_validator import validate

    with override_settings(MICROKIT=microkit(INCLUDE_IN_SCHEMA=True)):
        patterns = health_urlpatterns()
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    validate(json.loads(json.dumps(schema)))
    assert sorted(schema["paths"]) == [
        "/health/live",
        "/health/ready",
        "/health/startup",
    ]
    operation = schema["paths"]["/health/ready"]["get"]
    assert operation["operationId"] == "health_ready"
    assert operation["tags"] == ["health"]
    assert operation.get("parameters", []) == []
    assert sorted(operation["responses"]) == ["200", "503"]
    content = operation["responses"]["503"]["content"]
    assert list(content) == [HEALTH_JSON]
    assert content[HEALTH_JSON]["schema"]["required"] == ["status", "checks"]


# --- logging and connections ----------------------------------------------------------


def test_a_failing_probe_is_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="django.request")
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[f"{P}.unavailable"])):
        assert Client().get("/health/ready").status_code == 503
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("DEBUG", "Service Unavailable: /health/ready")
    ]


@pytest.mark.usefixtures("isolated_registry", "django_db_setup")
def test_tidying_connections_never_fails_a_check(
    django_db_blocker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("a connection left open would keep the test database in use")

    @register_check("opens-a-connection", probes=())
    def opens_a_connection() -> None:
        with django_db_blocker.unblock():
            connections["default"].ensure_connection()

    caplog.set_level("DEBUG", logger="django_microkit.health")
    # Database access is blocked outside the check: the pool thread cannot
    # even ask its connection whether it is still usable afterwards.
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=["opens-a-connection"])):
        assert run_probe("ready").status == "pass"
    assert "Could not close old database connections." in caplog.messages


# --- the machinery under the probes ---------------------------------------------------


def test_a_late_sync_result_after_an_async_timeout_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def probe_then_wait() -> HealthReport:
        report = await arun_probe("ready")
        await asyncio.sleep(0.5)  # the check ends while the loop still runs
        return report

    entry = {"check": f"{P}.sleep", "options": {"seconds": 0.3}, "timeout": 0.1}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry])):
        report = async_to_sync(probe_then_wait)()
    assert report.checks[0].output == "timeout"
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_an_interrupted_round_fails_its_waiters_instead_of_hanging() -> None:
    async def interrupt() -> None:
        waiter = asyncio.ensure_future(arun_probe("ready"))
        await asyncio.sleep(0.1)
        (round_task,) = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "_lead"  # type: ignore[union-attr]
        ]
        round_task.cancel()  # as a loop shutting down does
        with pytest.raises(RuntimeError, match="interrupted"):
            await waiter

    entry = {"check": f"{P}.async_sleep", "options": {"seconds": 0.3}}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        async_to_sync(interrupt)()
        assert run_probe("ready").status == "pass"  # the next round runs


def test_health_urls_module() -> None:
    from django_microkit.health import urls

    assert [pattern.name for pattern in urls.urlpatterns] == [
        "microkit-health-live",
        "microkit-health-ready",
        "microkit-health-startup",
    ]


def test_register_check_is_exported_at_the_top() -> None:
    import django_microkit

    assert django_microkit.register_check is register_check
    assert "register_check" in django_microkit.__all__


# --- a probe at a path of your own ------------------------------------------------


@access_log_at_debug
def _ping(request: HttpRequest) -> HttpResponse:
    """A check of the caller's own, logged as quietly as a probe."""
    return HttpResponse("pong")


#: A URLconf with readiness at a load balancer's fixed path, beside the standard routes.
urlpatterns = [
    path("", include("django_microkit.urls")),
    probe_route("healthz", "ready", name="healthz"),
    path("ping", _ping),
]


@pytest.mark.django_db
def test_readiness_at_an_exact_path_of_your_own(
    get: Callable[..., HttpResponse],
) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        response = get("/healthz")
        assert reverse("healthz") == "/healthz"
        assert get("/healthz/").status_code == 404
        standard = get("/health/ready")
    document = json.loads(response.content)
    assert (response.status_code, response["Content-Type"]) == (200, HEALTH_JSON)
    assert document["status"] == "pass"
    assert sorted(document["checks"]) == sorted(json.loads(standard.content)["checks"])


@pytest.mark.django_db
def test_a_probe_of_your_own_is_logged_at_debug(
    get: Callable[..., HttpResponse], log_lines: LogLines
) -> None:
    """Outside ``ACCESS_LOG["HEALTH_PATHS"]`` too: a load balancer asks often."""
    with override_settings(ROOT_URLCONF=__name__):
        get("/healthz")
        get("/.well-known/service-info")
    levels = [
        (line["path"], line["level"]) for line in log_lines.of("django_microkit.access")
    ]
    assert levels == [("/healthz", "debug"), ("/.well-known/service-info", "info")]


@pytest.mark.django_db
def test_a_view_marked_access_log_at_debug_is_logged_at_debug(
    log_lines: LogLines,
) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        Client().get("/ping")
        Client().get("/no-such-path")
    levels = [
        (line["path"], line["level"]) for line in log_lines.of("django_microkit.access")
    ]
    assert levels == [("/ping", "debug"), ("/no-such-path", "info")]


def test_probe_route_refuses_an_unknown_probe() -> None:
    with pytest.raises(ValueError, match="'healthy' is not a probe: use one of live"):
        probe_route("healthz", "healthy")


def _in_a_thread(function: Callable[[], Any], limit: float = 10.0) -> Any:
    """``function()``'s result, failing the test rather than hanging with it."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(function()), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "hangs"
    return outcome[0]


class _Refuses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        raise ValueError("a faulty filter")


def test_a_faulty_log_filter_neither_fails_nor_hangs_the_round() -> None:
    logger = logging.getLogger("django_microkit.health")

    async def probes() -> list[HealthReport]:
        together = asyncio.gather(*(arun_probe("ready") for _ in range(3)))
        return await asyncio.wait_for(together, 5)

    entry = {"check": f"{P}.unavailable"}
    logger.addFilter(refuses := _Refuses())
    try:
        with override_settings(
            MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)
        ):
            assert _in_a_thread(lambda: run_probe("ready")).status == "fail"
            reports = async_to_sync(probes)()
    finally:
        logger.removeFilter(refuses)
    assert [report.status for report in reports] == ["fail"] * 3


class _Interrupts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        raise KeyboardInterrupt


def test_an_interrupted_log_line_leaves_the_report_published() -> None:
    logger = logging.getLogger("django_microkit.health")
    config = microkit(READINESS_CHECKS=[f"{P}.fails_once"], RESULT_TTL=60)
    with override_settings(MICROKIT=config):
        logger.addFilter(interrupts := _Interrupts())
        try:
            with pytest.raises(KeyboardInterrupt):
                run_probe("ready")
        finally:
            logger.removeFilter(interrupts)
        assert run_probe("ready").status == "fail"  # reused, not run again
    assert RUNS["fails_once"] == 1


def test_a_round_that_cannot_be_published_does_not_stick() -> None:
    config = microkit(READINESS_CHECKS=[f"{P}.counted"], RESULT_TTL="1")

    def fails_twice() -> int:
        for _ in range(2):
            with pytest.raises(TypeError):
                run_probe("ready")
        return RUNS["counted"]

    with override_settings(MICROKIT=config):
        assert _in_a_thread(fails_twice) == 2
        with pytest.raises(TypeError):
            async_to_sync(arun_probe)("ready")


def test_a_sync_probe_on_the_loop_of_a_round_waits_a_bounded_time() -> None:
    # The round is a task of the loop the sync caller blocks: it cannot end
    # until that caller gives up.
    async def sync_inside_async() -> tuple[HealthReport, float, HealthReport]:
        led = asyncio.ensure_future(arun_probe("ready"))
        await asyncio.sleep(0)
        start = time.perf_counter()
        blocked = run_probe("ready")
        waited = time.perf_counter() - start
        await led
        return blocked, waited, await arun_probe("ready")

    entry = {"check": f"{P}.async_sleep", "options": {"seconds": 0.1}, "timeout": 0.3}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        blocked, waited, after = _in_a_thread(async_to_sync(sync_inside_async))
    assert blocked.status == "fail"
    assert [(r.name, r.status, r.output) for r in blocked.checks] == [
        ("async_sleep", "fail", "timeout")
    ]
    assert 0.3 <= waited < 0.3 + 2.0
    assert after.status == "pass"  # the round, once unblocked, was not stuck


def test_an_async_check_slow_to_cancel_does_not_hold_the_round() -> None:
    async def probe() -> tuple[HealthReport, float]:
        start = time.perf_counter()
        report = await arun_probe("ready")
        return report, time.perf_counter() - start

    entries = [{"check": f"{P}.slow_to_cancel", "timeout": 0.2}, f"{P}.ok"]
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=entries)):
        report, elapsed = async_to_sync(probe)()
    assert [(r.name, r.status, r.output) for r in report.checks] == [
        ("slow_to_cancel", "fail", "timeout"),
        ("ok", "pass", None),
    ]
    assert elapsed < 0.2 + 0.8


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "CancelledError"])
def test_a_sync_check_raising_a_base_exception_keeps_its_thread(kind: str) -> None:
    entry = {"check": f"{P}.interrupts", "options": {"kind": kind}, "timeout": 0.5}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        for _ in range(3):
            (result,) = run_probe("ready").checks
            assert (result.status, result.output) == ("fail", "error")
            assert result.detail is not None
            assert result.detail.startswith(kind)
    assert RUNS[kind] == 3


def test_a_check_whose_error_has_no_text_keeps_its_thread() -> None:
    entry = {"check": f"{P}.unprintable", "timeout": 0.5}
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[entry], RESULT_TTL=0)):
        for _ in range(2):
            (result,) = run_probe("ready").checks
            assert (result.status, result.output) == ("fail", "error")


@pytest.mark.usefixtures("isolated_registry")
def test_a_check_registered_after_a_probe_ran_is_not_hidden() -> None:
    with override_settings(MICROKIT=microkit(READINESS_CHECKS=[], RESULT_TTL=0)):
        assert run_probe("ready").checks == ()
        register_check("late")(health_checks.ok)
        assert [result.name for result in run_probe("ready").checks] == ["late"]


def test_a_caller_that_just_missed_a_report_joins_it() -> None:
    # A caller that finds no report just before a round ends must take that
    # round's report, not start another: a trace hook holds it on the way.
    found_none, published = threading.Event(), threading.Event()

    def late_caller() -> HealthReport:
        previous = sys.gettrace()  # coverage's, when measuring

        def hold_before_joining(frame: Any, event: Any, arg: Any) -> Any:
            code = frame.f_code
            if (code.co_filename, code.co_name) != (runner.__file__, "join"):
                return None
            sys.settrace(previous)
            found_none.set()
            published.wait(5)
            return previous(frame, event, arg) if previous else None

        sys.settrace(hold_before_joining)
        return run_probe("ready")

    config = microkit(READINESS_CHECKS=[f"{P}.counted"], RESULT_TTL=60)
    with override_settings(MICROKIT=config):
        late: list[HealthReport] = []
        thread = threading.Thread(target=lambda: late.append(late_caller()))
        thread.start()
        assert found_none.wait(5)
        report = run_probe("ready")
        published.set()
        thread.join(10)
    assert late == [report]
    assert RUNS["counted"] == 1
