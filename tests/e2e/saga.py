"""Helpers of the saga tests: place an order (202 and its Location), wait
until the catalog's answer decided it, and read either service's books."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.e2e.conftest import Stack

#: Seconds an order may stay pending before a test gives up on it.
DECISION_TIMEOUT = 60.0
DECIDED = {"confirmed", "rejected"}


def place(
    stack: Stack,
    items: Iterable[tuple[int, int]],
    *,
    session: requests.Session | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST an order of ``(product_id, quantity)`` items to orders."""
    response = (session or requests).post(
        stack.orders.url + "/api/orders/",
        json={"items": [{"product_id": p, "quantity": q} for p, q in items]},
        headers=headers,
        timeout=30,
    )
    return response


def placed(response: requests.Response) -> str:
    """The Location of an accepted (202) pending order."""
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending", response.text
    location: str = response.headers["Location"]
    assert location == f"/api/orders/{response.json()['id']}/"
    return location


def decided(stack: Stack, location: str, timeout: float = DECISION_TIMEOUT) -> Any:
    """The order at ``location`` once it is confirmed or rejected."""
    deadline = time.monotonic() + timeout
    while True:
        order = requests.get(stack.orders.url + location, timeout=10).json()
        if order["status"] in DECIDED:
            return order
        assert time.monotonic() < deadline, (location, order)
        time.sleep(0.1)


def scalar(database_url: str, sql: str, *params: object) -> int:
    """The one number ``sql`` selects from a service's database."""
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(urlsplit(database_url).path) as conn:
            return int(conn.execute(sql.replace("%s", "?"), params).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])


def wait_until_none_pending(stack: Stack, timeout: float = DECISION_TIMEOUT) -> None:
    """Every order of orders' database is decided (or the test fails)."""
    deadline = time.monotonic() + timeout
    while pending := scalar(
        stack.orders_database,
        "SELECT COUNT(*) FROM orders_order WHERE status = %s",
        "pending",
    ):
        assert time.monotonic() < deadline, f"{pending} orders still pending"
        time.sleep(0.2)


def new_product(stack: Stack, mint: Callable[..., str], stock: int, sku: str) -> int:
    """A product of the catalog with ``stock`` units (created with a fresh
    token of orders that may write to the catalog); its id."""
    created = requests.post(
        stack.catalog.url + "/api/products/",
        json={"sku": sku, "name": "Saga", "price": "1.00", "stock": stock},
        headers={"Authorization": f"Bearer {mint('catalog', 'catalog:write')}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    product_id: int = created.json()["id"]
    return product_id


def stock_of(stack: Stack, product_id: int) -> int:
    product = requests.get(
        f"{stack.catalog.url}/api/products/{product_id}/", timeout=10
    ).json()
    stock: int = product["stock"]
    return stock
