"""A bounded load run: clients place orders through orders (uvicorn), which
reads the price from catalog (gunicorn) and publishes the order; catalog's
worker reserves the stock and orders' worker confirms the order. Afterwards
the books of both services must agree: every 202 is one order, every order is
decided (0 lost), the units of the confirmed orders are the stock taken and
each confirmed order has one reservation (0 doubled), retries with the same
Idempotency-Key placed nothing twice, and no answer was a 5xx."""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.conftest import Results, Stack
from tests.e2e.saga import new_product, scalar, stock_of, wait_until_none_pending

DURATION = float(os.environ.get("E2E_LOAD_SECONDS", "30"))
CONNECTIONS = int(os.environ.get("E2E_LOAD_CONNECTIONS", "16"))
STOCK = 1_000_000
#: Every n-th order is sent twice with the same key, as a client retrying.
RETRY_EVERY = 10


def test_load_keeps_both_services_books_in_step(
    stack: Stack, mint: Callable[..., str], results: Results
) -> None:
    product_id = new_product(stack, mint, STOCK, f"LOAD-{uuid.uuid4().hex[:8]}")
    order = {"items": [{"product_id": product_id, "quantity": 1}]}
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    replays = 0
    problems: Counter[str | None] = Counter()
    duplicates: list[str] = []
    keys_placed: set[str] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION

    def client() -> None:
        nonlocal replays
        session = requests.Session()
        sent = 0
        while time.monotonic() < deadline:
            key = str(uuid.uuid4())
            attempts = 2 if sent % RETRY_EVERY == 0 else 1
            sent += 1
            placed_with_key = False
            for _ in range(attempts):
                started = time.perf_counter()
                response = session.post(
                    stack.orders.url + "/api/orders/",
                    json=order,
                    headers={"Idempotency-Key": key},
                    timeout=30,
                )
                elapsed = time.perf_counter() - started
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] += 1
                    if response.status_code >= 400:
                        problems[response.json().get("code")] += 1
                    if replayed:
                        replays += 1
                    elif response.status_code == 202:
                        if placed_with_key:
                            # The retry placed a second order: a duplicate.
                            duplicates.append(key)
                        placed_with_key = True
                        keys_placed.add(key)

    started = time.monotonic()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for future in [pool.submit(client) for _ in range(CONNECTIONS)]:
            future.result()
    wall = time.monotonic() - started

    # Every order accepted is decided by the catalog's answer: none lost.
    drained_started = time.monotonic()
    wait_until_none_pending(stack)
    drained = time.monotonic() - drained_started

    def orders(status: str) -> int:
        return scalar(
            stack.orders_database,
            "SELECT COUNT(*) FROM orders_orderitem JOIN orders_order"
            " ON orders_order.id = orders_orderitem.order_id"
            " WHERE product_id = %s AND status = %s",
            product_id,
            status,
        )

    placed = orders("confirmed") + orders("rejected")
    confirmed = orders("confirmed")
    reserved = STOCK - stock_of(stack, product_id)
    reservations = scalar(
        stack.catalog_database,
        "SELECT COUNT(DISTINCT order_id) FROM catalog_reservation"
        " WHERE product_id = %s",
        product_id,
    )
    quantiles = statistics.quantiles(latencies, n=100)
    requests_sent = len(latencies)
    results.record("load: connections", CONNECTIONS)
    results.record("load: duration (s)", round(wall, 1))
    results.record("load: requests", requests_sent)
    results.record("load: orders placed", len(keys_placed))
    results.record("load: idempotent replays", replays)
    results.record("load: throughput (req/s)", round(requests_sent / wall, 1))
    results.record("load: p50 (ms)", round(quantiles[49] * 1000, 1))
    results.record("load: p99 (ms)", round(quantiles[98] * 1000, 1))
    results.record("load: statuses", dict(statuses))
    results.record("load: last orders decided after the run (s)", round(drained, 1))

    results.record("load: problems", dict(problems))
    assert not duplicates, duplicates
    assert set(statuses) == {202}, (statuses, problems)
    assert placed == len(keys_placed), (placed, len(keys_placed))
    # The stock is plenty: every order is confirmed, each took one unit once.
    assert confirmed == placed == reserved == reservations, (
        confirmed,
        placed,
        reserved,
        reservations,
    )
    assert replays > 0
