"""Dependency faults: the catalog down or hanging, the database and Redis
unreachable. Each must end in a fast, well-formed problem response, never a
hang, an HTML page or a silently skipped safety check."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.conftest import Results, Spawner, Stack, assert_problem
from tests.e2e.servers import FaultProxy, ServiceProcess, closed_port

ORDER = {"items": [{"product_id": 4, "quantity": 1}]}
#: MICROKIT["SERVICES"]["catalog"] of the orders example service.
DEADLINE = 5.0
COOL_DOWN = 10.0


@pytest.fixture(scope="module")
def proxy(stack: Stack) -> Iterator[FaultProxy]:
    proxy = FaultProxy(stack.catalog.port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def proxied_orders(stack: Stack, spawner: Spawner, proxy: FaultProxy) -> ServiceProcess:
    """A second orders instance (uvicorn: one process, one breaker) that
    reaches the catalog through the fault proxy."""
    env = {**stack.orders.env, "CATALOG_URL": proxy.url}
    return spawner.spawn("orders-proxied", "orders", "uvicorn", env)


def _order(orders: ServiceProcess) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = requests.post(orders.url + "/api/orders/", json=ORDER, timeout=30)
    return response, time.perf_counter() - started


def _until_recovered(orders: ServiceProcess, limit: float) -> float:
    """Seconds until an order succeeds again."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        response, _ = _order(orders)
        if response.status_code == 202:
            return time.perf_counter() - started
        assert_problem(response, 503, "catalog_unavailable")
        time.sleep(0.5)
    raise AssertionError(f"orders did not recover within {limit} s")


@pytest.mark.parametrize("fault", ["down", "hang"])
def test_catalog_fault_opens_the_breaker_and_recovers(
    proxied_orders: ServiceProcess,
    proxy: FaultProxy,
    results: Results,
    fault: str,
) -> None:
    response, _ = _order(proxied_orders)
    assert response.status_code == 202, response.text

    proxy.set_mode(fault)  # type: ignore[arg-type]
    latencies = []
    for _ in range(6):
        response, elapsed = _order(proxied_orders)
        document = assert_problem(response, 503, "catalog_unavailable")
        assert int(response.headers["Retry-After"]) >= 1, document
        latencies.append(elapsed)
    # Every call ends within the client's deadline (plus scheduling slack)...
    assert max(latencies) < DEADLINE + 2, latencies
    # ...and once the breaker is open, orders answers at once.
    assert max(latencies[-3:]) < 0.25, latencies
    results.record(f"catalog {fault}: first 503 (s)", round(latencies[0], 3))
    results.record(
        f"catalog {fault}: 503 with breaker open, max of 3 (ms)",
        round(max(latencies[-3:]) * 1000, 1),
    )

    proxy.set_mode("forward")
    recovered = _until_recovered(proxied_orders, COOL_DOWN + 10)
    results.record(f"catalog {fault}: recovered after (s)", round(recovered, 1))


def test_logs_of_the_faults_name_the_open_breaker(
    proxied_orders: ServiceProcess,
) -> None:
    logs = proxied_orders.log_text()
    assert '"logger":"django_microkit.client"' in logs
    assert "open" in logs


# --- database -------------------------------------------------------------------


@pytest.fixture(scope="module")
def orders_without_database(stack: Stack, spawner: Spawner) -> ServiceProcess:
    env = {
        **stack.orders.env,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/orders",
        "CATALOG_URL": f"http://127.0.0.1:{closed_port()}",
    }
    return spawner.spawn(
        "orders-no-database", "orders", "uvicorn", env, wait_ready=False
    )


def test_database_unreachable(
    orders_without_database: ServiceProcess, results: Results
) -> None:
    url = orders_without_database.url
    live = requests.get(url + "/health/live", timeout=10)
    assert live.status_code == 200
    started = time.perf_counter()
    ready = requests.get(url + "/health/ready", timeout=10)
    results.record(
        "database unreachable: readiness answer (ms)",
        round((time.perf_counter() - started) * 1000, 1),
    )
    assert ready.status_code == 503
    assert ready.headers["Content-Type"].startswith("application/health+json")
    health = ready.json()
    assert health["status"] == "fail"
    assert health["checks"]["database:default"][0]["status"] == "fail"
    for path in ["/api/orders/", "/api/orders/1/"]:
        response = requests.get(url + path, timeout=10)
        document = assert_problem(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert "password" not in response.text and "5432" not in response.text
        assert "127.0.0.1" not in document["detail"]
    # The outage is reported in the log, with the request's ID.
    assert '"logger":"django.request"' in orders_without_database.log_text()


# --- Redis ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def without_redis(
    stack: Stack, spawner: Spawner
) -> tuple[ServiceProcess, ServiceProcess]:
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    catalog = spawner.spawn(
        "catalog-no-redis",
        "catalog",
        "gunicorn",
        {**stack.catalog.env, "REDIS_URL": dead_redis},
        workers=1,
        wait_ready=False,
    )
    orders = spawner.spawn(
        "orders-no-redis",
        "orders",
        "uvicorn",
        {
            **stack.orders.env,
            "REDIS_URL": dead_redis,
            # Were idempotency to fail open, the order would reach the catalog:
            # make that answer distinguishable (catalog_unavailable).
            "CATALOG_URL": f"http://127.0.0.1:{closed_port()}",
        },
        wait_ready=False,
    )
    return catalog, orders


def test_redis_unreachable_fails_closed(
    without_redis: tuple[ServiceProcess, ServiceProcess],
    mint: Callable[..., str],
) -> None:
    catalog, orders = without_redis
    for service in (catalog, orders):
        assert requests.get(service.url + "/health/live", timeout=10).status_code == 200
        ready = requests.get(service.url + "/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache:default"][0]["status"] == "fail"
    # Reads need no cache.
    assert requests.get(catalog.url + "/api/products/1/", timeout=10).status_code == 200
    # A service token cannot be checked for replay: refused, not accepted.
    response = requests.post(
        catalog.url + "/api/products/1/reserve/",
        json={"quantity": 1},
        headers={"Authorization": f"Bearer {mint('catalog', 'catalog:write')}"},
        timeout=10,
    )
    assert_problem(response, 503, "service_auth_unavailable")
    # An idempotency key cannot be checked: refused, not executed.
    response = requests.post(
        orders.url + "/api/orders/",
        json=ORDER,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert_problem(response, 503, "idempotency_unavailable")
