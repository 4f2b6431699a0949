"""The saga of the example services, on real servers with their events
workers: an order is accepted pending (202), the catalog reserves all of its
items or none and says so in an event, and the order becomes confirmed or
rejected with the catalog's reasons. Concurrent orders never oversell."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import Results, Stack
from tests.e2e.saga import decided, new_product, place, placed, scalar, stock_of


def _sku() -> str:
    return f"SAGA-{uuid.uuid4().hex[:8]}"


def test_an_order_in_stock_is_confirmed_and_takes_its_stock(
    stack: Stack, mint: Callable[..., str]
) -> None:
    first = new_product(stack, mint, 10, _sku())
    second = new_product(stack, mint, 5, _sku())

    location = placed(place(stack, [(first, 3), (second, 5), (first, 1)]))
    order = decided(stack, location)

    assert (order["status"], order["rejection_reasons"]) == ("confirmed", [])
    assert (stock_of(stack, first), stock_of(stack, second)) == (6, 0)


def test_an_order_short_of_one_item_is_rejected_and_takes_nothing(
    stack: Stack, mint: Callable[..., str]
) -> None:
    plenty = new_product(stack, mint, 10, _sku())
    scarce = new_product(stack, mint, 2, _sku())

    location = placed(place(stack, [(plenty, 4), (scarce, 3)]))
    order = decided(stack, location)

    assert order["status"] == "rejected"
    (reason,) = order["rejection_reasons"]
    assert (reason["product_id"], reason["code"], reason["available"]) == (
        scarce,
        "insufficient_stock",
        2,
    )
    assert "only 2 of SAGA-" in reason["detail"]
    # All or nothing: the item in stock was not taken either.
    assert (stock_of(stack, plenty), stock_of(stack, scarce)) == (10, 2)


def test_concurrent_orders_on_one_product_never_oversell(
    stack: Stack, mint: Callable[..., str], results: Results
) -> None:
    stock, orders = 25, 80
    product = new_product(stack, mint, stock, _sku())

    with ThreadPoolExecutor(16) as pool:
        locations = list(
            pool.map(lambda _: placed(place(stack, [(product, 1)])), range(orders))
        )
        outcomes = list(pool.map(lambda loc: decided(stack, loc), locations))

    statuses = Counter(order["status"] for order in outcomes)
    results.record("saga: concurrent orders on one product", dict(statuses))
    assert statuses == {"confirmed": stock, "rejected": orders - stock}
    assert stock_of(stack, product) == 0
    for order in outcomes:
        if order["status"] == "rejected":
            assert [r["code"] for r in order["rejection_reasons"]] == [
                "insufficient_stock"
            ]


def test_the_workers_log_with_the_placing_requests_id_and_trace(
    stack: Stack,
) -> None:
    request_id = f"saga-{uuid.uuid4().hex[:12]}"
    trace_id = uuid.uuid4().hex
    headers = {
        "X-Request-ID": request_id,
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
    }
    response = place(stack, [(5, 1)], headers=headers)
    decided(stack, placed(response))

    for worker in (stack.catalog_worker, stack.orders_worker):
        lines = [
            json.loads(line)
            for line in worker.log_text().splitlines()
            if line.startswith("{") and request_id in line
        ]
        # The catalog's worker handled orders' event, orders' worker the
        # catalog's answer: both continued the request's ID and trace.
        assert lines, worker.name
        assert {line["trace_id"] for line in lines} == {trace_id}, worker.name


@pytest.mark.skipif(
    not os.environ.get("RABBITMQ_URL"),
    reason="needs RabbitMQ (RABBITMQ_URL): kombu's filesystem transport drops "
    "the messages a killed consumer had taken, where a broker redelivers them",
)
def test_a_worker_killed_mid_burst_loses_and_doubles_nothing(
    stack: Stack, mint: Callable[..., str], results: Results
) -> None:
    stock, orders = 1000, 60
    product = new_product(stack, mint, stock, _sku())

    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(lambda: placed(place(stack, [(product, 1)])))
            for _ in range(orders)
        ]
        # SIGKILL in the middle of the burst: whatever catalog's worker held
        # unacked goes back to the queue, and what its transaction had not
        # committed never happened.
        while sum(future.done() for future in futures) < orders // 3:
            time.sleep(0.01)
        stack.catalog_worker.kill()
        locations = [future.result() for future in futures]
    started = time.monotonic()
    stack.catalog_worker.start()
    outcomes = [decided(stack, location) for location in locations]
    results.record(
        "saga: all orders decided after the worker restarted (s)",
        round(time.monotonic() - started, 1),
    )

    assert Counter(order["status"] for order in outcomes) == {"confirmed": orders}
    assert stock_of(stack, product) == stock - orders
    reservations = scalar(
        stack.catalog_database,
        "SELECT COUNT(*) FROM catalog_reservation WHERE product_id = %s",
        product,
    )
    assert reservations == orders
