"""A bounded load run: clients place orders through orders (uvicorn), which
checks and reserves stock in catalog (gunicorn). Afterwards the books of both
services must agree: every 201 is one order and one reservation, retries with
the same Idempotency-Key placed nothing twice, and no answer was a 5xx."""

from __future__ import annotations

import os
import sqlite3
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from tests.e2e.conftest import Results, Stack

DURATION = float(os.environ.get("E2E_LOAD_SECONDS", "30"))
CONNECTIONS = int(os.environ.get("E2E_LOAD_CONNECTIONS", "16"))
STOCK = 1_000_000
#: Every n-th order is sent twice with the same key, as a client retrying.
RETRY_EVERY = 10


def _scalar(database_url: str, sql: str, *params: object) -> int:
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(urlsplit(database_url).path) as conn:
            return int(conn.execute(sql.replace("%s", "?"), params).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])


def test_load_keeps_both_services_books_in_step(
    stack: Stack, mint: Callable[..., str], results: Results
) -> None:
    created = requests.post(
        stack.catalog.url + "/api/products/",
        json={
            "sku": f"LOAD-{uuid.uuid4().hex[:8]}",
            "name": "Load",
            "price": "1.00",
            "stock": STOCK,
        },
        headers={"Authorization": f"Bearer {mint('catalog', 'catalog:write')}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
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
                    elif response.status_code == 201:
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

    placed = _scalar(
        stack.orders_database,
        "SELECT COUNT(*) FROM orders_orderitem WHERE product_id = %s",
        product_id,
    )
    stock = requests.get(
        f"{stack.catalog.url}/api/products/{product_id}/", timeout=10
    ).json()["stock"]
    reserved = STOCK - stock
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

    results.record("load: problems", dict(problems))
    assert not duplicates, duplicates
    assert set(statuses) == {201}, (statuses, problems)
    assert placed == len(keys_placed) == reserved, (placed, statuses, reserved)
    assert replays > 0
