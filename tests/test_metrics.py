"""Metrics: what is recorded, how /metrics answers, who may read it, and the
checks of MICROKIT["METRICS"]."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.checks import CheckMessage
from django.test import AsyncClient, Client, override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from django_microkit.client import (
    CircuitOpenError,
    NotFoundError,
    ServiceClient,
    ServiceError,
)
from django_microkit.client.breaker import BreakerConfig, CircuitBreaker
from django_microkit.health import run_probe
from django_microkit.metrics.checks import check_metrics, check_metrics_deploy
from django_microkit.metrics.families import (
    EVENTS_PUBLISHED,
    OTHER_METHOD,
    UNMATCHED_ROUTE,
    observe_client_call,
)
from django_microkit.metrics.multiprocess import (
    ENVIRONMENT_VARIABLE,
    export_directory,
    mark_process_dead,
    metrics_registry,
    prepare_directory,
)
from django_microkit.metrics.views import metrics_urlpatterns
from tests.conftest import LogLines
from tests.scripted_server import (  # noqa: F401
    Reply,
    ScriptedServer,
    catalog_fixture,
    configure_fixture,
    server_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
SERVER = "http_server_request_duration_seconds_count"
CLIENT = "http_client_request_duration_seconds_count"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def served(method: str, route: str, status: int) -> float:
    return sample(
        SERVER,
        http_request_method=method,
        http_route=route,
        http_response_status_code=str(status),
    )


def metrics(**settings: Any) -> Any:
    return override_settings(MICROKIT={"SERVICE_NAME": "tests", "METRICS": settings})


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set first, so that the end of the test removes what a test exports.
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "")
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)


# --- the server histogram ------------------------------------------------------


@pytest.mark.django_db
def test_a_request_is_counted_under_its_route_not_its_path() -> None:
    route = "request-id/echo"
    before = served("GET", route, 200)
    Client().get("/request-id/echo?x=1")
    Client().get("/request-id/echo")
    assert served("GET", route, 200) == before + 2
    assert (
        sample(
            SERVER.replace("_count", "_sum"),
            http_request_method="GET",
            http_route=route,
            http_response_status_code="200",
        )
        > 0
    )


@pytest.mark.django_db
def test_a_route_with_a_converter_is_one_series() -> None:
    route = "idempotency/things/<int:pk>/"
    with override_settings(ROOT_URLCONF="tests.metrics_urls"):
        before = served("GET", "things/<int:pk>/", 200)
        for pk in (1, 2, 3):
            assert Client().get(f"/things/{pk}/").status_code == 200
        assert served("GET", "things/<int:pk>/", 200) == before + 3
    assert served("GET", route, 200) == 0


@pytest.mark.django_db
def test_a_regular_expression_route_has_no_anchors() -> None:
    route = "regex/(?P<pk>[0-9]+)/"
    with override_settings(ROOT_URLCONF="tests.metrics_urls"):
        before = served("GET", route, 200)
        assert Client().get("/regex/7/").status_code == 200
        assert served("GET", route, 200) == before + 1
        assert served("GET", "^" + route + "$", 200) == 0


def test_unmatched_urls_share_one_route() -> None:
    before = served("GET", UNMATCHED_ROUTE, 404)
    for path in ("/nowhere", "/nowhere/else", "/%ff"):
        assert Client().get(path).status_code == 404
    assert served("GET", UNMATCHED_ROUTE, 404) == before + 3


def test_an_invented_method_is_other() -> None:
    before = served(OTHER_METHOD, UNMATCHED_ROUTE, 404)
    Client().generic("BREW", "/nowhere")
    assert served(OTHER_METHOD, UNMATCHED_ROUTE, 404) == before + 1
    assert served("BREW", UNMATCHED_ROUTE, 404) == 0


def test_the_buckets_come_from_the_settings() -> None:
    with metrics(BUCKETS=[0.5, 1.0]):
        Client().get("/nowhere")
        bounds = {
            sample_.labels["le"]
            for family in REGISTRY.collect()
            if family.name == "http_server_request_duration_seconds"
            for sample_ in family.samples
            if sample_.name.endswith("_bucket")
        }
    assert bounds == {"0.5", "1.0", "+Inf"}


def test_metrics_off_records_nothing_and_serves_no_route() -> None:
    with metrics(ENABLED=False):
        assert Client().get("/nowhere").status_code == 404
        assert (
            REGISTRY.get_sample_value(
                SERVER,
                {
                    "http_request_method": "GET",
                    "http_route": UNMATCHED_ROUTE,
                    "http_response_status_code": "404",
                },
            )
            is None
        )
        assert metrics_urlpatterns() == []
    (pattern,) = metrics_urlpatterns()
    assert (str(pattern.pattern), pattern.name) == ("metrics", "microkit-metrics")


# --- the endpoint --------------------------------------------------------------


def test_metrics_are_served_in_the_prometheus_text_format() -> None:
    Client().get("/nowhere")
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["http_server_request_duration_seconds"].type == "histogram"


def test_openmetrics_when_asked() -> None:
    accept = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    response = Client().get("/metrics", headers={"Accept": accept})
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.endswith(b"# EOF\n")


def test_a_scrape_is_logged_at_debug(log_lines: LogLines) -> None:
    Client().get("/metrics")
    (line,) = log_lines.of("django_microkit.access")
    assert (line["path"], line["level"]) == ("/metrics", "debug")


def test_other_methods_are_not_allowed() -> None:
    response = Client().post("/metrics")
    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.1.2.3", "172.20.0.9", "192.168.1.1", "::ffff:10.0.0.1"],
)
def test_loopback_and_private_callers_may_read(address: str) -> None:
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200


@pytest.mark.parametrize("address", ["203.0.113.7", "2001:db8::1", "", "not-an-ip"])
def test_other_callers_get_a_403_problem(address: str) -> None:
    response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "metrics_forbidden"
    assert b"http_server" not in response.content


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Bearer s3cret-token-of-the-scrapers", 200),
        ("bearer s3cret-token-of-the-scrapers", 200),
        ("Bearer wrong", 403),
        ("Basic s3cret-token-of-the-scrapers", 403),
        ("", 403),
    ],
)
def test_a_token_lets_any_caller_read(authorization: str, status: int) -> None:
    with metrics(TOKEN="s3cret-token-of-the-scrapers", ALLOW_NETWORKS=[]):
        client = Client(REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION=authorization)
        assert client.get("/metrics").status_code == status
        assert Client().get("/metrics").status_code == 403


def test_without_a_token_no_authorization_is_accepted() -> None:
    with metrics(ALLOW_NETWORKS=[]):
        client = Client(HTTP_AUTHORIZATION="Bearer ")
        assert client.get("/metrics").status_code == 403


def test_metrics_are_served_under_asgi() -> None:
    response = async_to_sync(AsyncClient().get)("/metrics")
    assert response.status_code == 200
    assert b"http_server_request_duration_seconds" in response.content


# --- the other families --------------------------------------------------------


def called(status: str, error: str) -> float:
    """Calls to catalog counted with this status or error."""
    return sample(
        CLIENT,
        peer_service="catalog",
        http_request_method="GET",
        http_response_status_code=status,
        error_type=error,
    )


def test_a_client_call_is_counted_by_status(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/api/products/7/", Reply(json={"id": 7}))
    before = called("200", "")
    catalog.get("/api/products/7/")
    assert called("200", "") == before + 1


def test_client_calls_are_counted_in_the_series_of_their_own_outcome(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    server.script("/api/products/7/", Reply(json={"id": 7}), Reply(json={"id": 7}))
    server.script("/api/products/8/", Reply(status=404, json={}))
    ok, missing = called("200", ""), called("404", "")
    catalog.get("/api/products/7/")
    catalog.get("/api/products/7/")
    with pytest.raises(NotFoundError):
        catalog.get("/api/products/8/")
    assert (called("200", ""), called("404", "")) == (ok + 2, missing + 1)


def test_client_calls_with_an_unknown_method_are_counted_as_other(
    catalog: ServiceClient, server: ScriptedServer
) -> None:
    def other() -> float:
        return sample(
            CLIENT,
            peer_service="catalog",
            http_request_method=OTHER_METHOD,
            # http.server's answer to a method it does not implement.
            http_response_status_code="501",
            error_type="",
        )

    before = other()
    for method in ("PROPFIND", "purge"):
        with pytest.raises(ServiceError):
            catalog.request(method, "/api/products/7/")
    assert other() == before + 2


def test_a_failed_client_call_is_counted_by_error_type(configure: Any) -> None:
    client = configure(BREAKER={"FAILURES": 1, "COOL_DOWN": 60}, RETRIES=0)
    client.breaker.record(client.breaker.before_attempt(), failed=True)
    before = called("", "circuit_open")
    with pytest.raises(CircuitOpenError):
        client.get("/api/products/")
    assert called("", "circuit_open") == before + 1
    client.breaker.reset()


def test_metrics_off_records_no_client_call() -> None:
    with metrics(ENABLED=False):
        observe_client_call("catalog", "GET", 200, None, 0.1)
        names = {family.name for family in REGISTRY.collect()}
    assert "http_client_request_duration_seconds" not in names


def test_a_breakers_state_and_transitions() -> None:
    breaker = CircuitBreaker("metrics-peer", BreakerConfig(failures=1))
    opened = sample(
        "microkit_client_circuit_breaker_transitions_total",
        peer_service="metrics-peer",
        state="open",
    )
    breaker.record(breaker.before_attempt(), failed=True)
    state = "microkit_client_circuit_breaker_state"
    assert sample(state, peer_service="metrics-peer") == 2
    assert (
        sample(
            "microkit_client_circuit_breaker_transitions_total",
            peer_service="metrics-peer",
            state="open",
        )
        == opened + 1
    )
    breaker.reset()
    assert sample(state, peer_service="metrics-peer") == 0


@pytest.mark.django_db
def test_health_checks_are_counted_and_timed() -> None:
    labels = {"probe": "ready", "check": "database:default"}
    before = sample("microkit_health_checks_total", status="pass", **labels)
    timed = sample("microkit_health_check_duration_seconds_count", **labels)
    run_probe("ready", fresh=True)
    assert sample("microkit_health_checks_total", status="pass", **labels) == before + 1
    assert sample("microkit_health_check_duration_seconds_count", **labels) == timed + 1
    with metrics(ENABLED=False):
        run_probe("ready", fresh=True)
    assert sample("microkit_health_checks_total", status="pass", **labels) == before + 1


@pytest.mark.django_db
def test_idempotency_replays_and_conflicts_are_counted() -> None:
    key, client = "metrics-key-1", APIClient()
    headers = {"Idempotency-Key": key, "X-Test-Caller": "service:metrics"}
    replays = sample("microkit_idempotency_replays_total")
    reused = sample(
        "microkit_idempotency_conflicts_total", code="idempotency_key_reused"
    )
    path = "/idempotency/counter/"
    client.post(path, {"counter": "m"}, format="json", headers=headers)
    client.post(path, {"counter": "m"}, format="json", headers=headers)
    assert sample("microkit_idempotency_replays_total") == replays + 1
    response = client.post(path, {"counter": "n"}, format="json", headers=headers)
    assert response.status_code == 422
    assert (
        sample("microkit_idempotency_conflicts_total", code="idempotency_key_reused")
        == reused + 1
    )


def test_service_token_refusals_are_counted_by_code() -> None:
    labels = {"code": "token_invalid"}
    before = sample("microkit_service_auth_refusals_total", **labels)
    response = APIClient().get(
        "/service-auth/service/", headers={"Authorization": "Bearer not.a.token"}
    )
    assert response.status_code == 401
    assert sample("microkit_service_auth_refusals_total", **labels) == before + 1


def test_event_metrics_are_ready_for_the_events_code() -> None:
    before = sample("microkit_events_published_total", event_type="orders.order.v1")
    EVENTS_PUBLISHED.labels("orders.order.v1").inc()
    assert (
        sample("microkit_events_published_total", event_type="orders.order.v1")
        == before + 1
    )


# --- several processes ---------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import Counter
    from django_microkit.metrics.families import BREAKER_STATE
    Counter("microkit_test_child", "", ["n"]).labels("a").inc(int(sys.argv[1]))
    BREAKER_STATE.labels("child").set(2)
    print(os.getpid())
    """
)


def _child(directory: Path, count: int) -> int:
    env = {**os.environ, ENVIRONMENT_VARIABLE: str(directory)}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(count)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(result.stdout)


def _values(registry: Any, name: str) -> dict[str, float]:
    return {
        str(sample_.labels): sample_.value
        for family in registry.collect()
        for sample_ in family.samples
        if sample_.name == name
    }


def test_counts_of_several_processes_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _child(tmp_path, 3), _child(tmp_path, 4)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    registry = metrics_registry()
    assert registry is not REGISTRY
    assert _values(registry, "microkit_test_child_total") == {"{'n': 'a'}": 7.0}
    state = "microkit_client_circuit_breaker_state"
    assert list(_values(registry, state).values()) == [2.0]
    mark_process_dead(first)
    mark_process_dead(second)
    assert _values(metrics_registry(), state) == {}
    assert _values(metrics_registry(), "microkit_test_child_total")


def test_preparing_the_directory_removes_only_value_files(tmp_path: Path) -> None:
    directory = tmp_path / "made"
    prepare_directory(str(directory))
    (directory / "counter_12.db").write_bytes(b"old")
    (directory / "keep.txt").write_text("not ours")
    prepare_directory(str(directory))
    assert sorted(p.name for p in directory.iterdir()) == ["keep.txt"]


def test_marking_a_process_dead_in_single_process_mode_does_nothing() -> None:
    mark_process_dead(os.getpid())
    assert metrics_registry() is REGISTRY


def test_exporting_the_directory() -> None:
    export_directory("/tmp/somewhere")
    assert os.environ[ENVIRONMENT_VARIABLE] == "/tmp/somewhere"


# --- checks ----------------------------------------------------------------------


def ids(messages: list[CheckMessage]) -> list[str]:
    return [str(message.id).removeprefix("django_microkit.") for message in messages]


_RUNTIME = [
    ({}, []),
    ({"PATH": "/metrics"}, ["E100"]),
    ({"PATH": ""}, ["E100"]),
    ({"ALLOW_NETWORKS": ["10.0.0.0/8", "intranet", 7]}, ["E101", "E101"]),
    ({"BUCKETS": []}, ["E102"]),
    ({"BUCKETS": [0.1, 0.05]}, ["E102"]),
    ({"BUCKETS": [0.1, 0.1]}, ["E102"]),
    ({"BUCKETS": [0, 1]}, ["E102"]),
    ({"BUCKETS": ["1"]}, ["E102"]),
    ({"BUCKETS": "1"}, []),
    ({"ALLOW_NETWORKS": "10.0.0.0/8"}, []),
]
_DEPLOY = [
    ({"MULTIPROCESS_DIR": "/run/metrics"}, []),
    ({}, ["W101"]),
    ({"ENABLED": False}, []),
    (
        {"MULTIPROCESS_DIR": "/run/metrics", "ALLOW_NETWORKS": ["0.0.0.0/0"]},
        ["W100"],
    ),
    ({"MULTIPROCESS_DIR": "/run/metrics", "ALLOW_NETWORKS": ["::/0"]}, ["W100"]),
    ({"MULTIPROCESS_DIR": "/run/metrics", "ALLOW_NETWORKS": ["x"]}, []),
    ({"MULTIPROCESS_DIR": "/run/metrics", "ALLOW_NETWORKS": "x"}, []),
    ({"MULTIPROCESS_DIR": "/run/metrics", "TOKEN": "short"}, ["W103"]),
    ({"MULTIPROCESS_DIR": "/run/metrics", "TOKEN": "x" * 32}, []),
]


@pytest.mark.parametrize(
    ("check", "section", "expected"),
    [(check_metrics, *row) for row in _RUNTIME]
    + [(check_metrics_deploy, *row) for row in _DEPLOY],
)
def test_the_checks(check: Any, section: dict[str, Any], expected: list[str]) -> None:
    with metrics(**section):
        assert ids(check()) == expected


def test_a_directory_that_is_a_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with metrics(MULTIPROCESS_DIR=str(a_file)):
        assert ids(check_metrics()) == ["E103"]
    with metrics(MULTIPROCESS_DIR=str(tmp_path / "not-yet")):
        assert ids(check_metrics()) == []
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(a_file))
    assert ids(check_metrics()) == ["E103"]


def test_setting_and_environment_disagreeing_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    with metrics(MULTIPROCESS_DIR=str(tmp_path)):
        assert ids(check_metrics()) == []
    with metrics(MULTIPROCESS_DIR=str(tmp_path / "other")):
        assert ids(check_metrics()) == ["W102"]


def test_the_environment_directory_satisfies_the_deploy_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    assert ids(check_metrics_deploy()) == []
