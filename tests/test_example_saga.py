"""The saga of the example services, each in its own process: catalog reserves
a placed order's stock, all of it or none, and publishes the outcome; the
signed events each service publishes are accepted by the other (the keys and
peers of both settings), and a redelivery has no second effect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_example_orders import PRELUDE, run_in

# Events from orders are signed here with orders' own (development) key, which
# catalog's settings list for orders.
CATALOG_PRELUDE = """
import dataclasses, json
from django.core.management import call_command
from catalog.models import Product, Reservation
from common_settings import DEV_ORDERS_SIGNING_KEY, ORDERS_KEY_ID
from django_microkit.events.envelope import encode_event, new_event
from django_microkit.events.models import DeadLetter
from django_microkit.service_auth.keys import load_key
from django_microkit.testing import capture_events

call_command("migrate", verbosity=0)
ORDERS_KEY = load_key(ORDERS_KEY_ID, "EdDSA", DEV_ORDERS_SIGNING_KEY, service="orders")


def stock():
    return {p.sku: p.stock for p in Product.objects.all()}


def placed(events, order_id, *items, event_id=None):
    event = new_event(
        "orders",
        "orders.order.placed.v1",
        {"order_id": order_id,
         "items": [{"product_id": p, "quantity": q} for p, q in items]},
        f"order-{order_id}",
    )
    if event_id is not None:
        event = dataclasses.replace(event, id=event_id)
    outcome = events.deliver(encode_event(event, ORDERS_KEY))
    return [outcome.status, outcome.reason]
"""

RESERVE = """
out = {"before": stock()}
with capture_events() as events:
    # Seeded: 1 KB-001 (25), 2 MS-002 (120), 3 MN-003 (8).
    out["all"] = placed(events, 1, (1, 2), (3, 5), (1, 3), event_id="e-1")
    out["again"] = placed(events, 1, (1, 2), (3, 5), (1, 3), event_id="e-1")
    out["after_all"] = stock()
    out["none"] = placed(events, 2, (2, 1), (3, 4), (999, 1))
    out["invalid"] = placed(events, 3)
    out["published"] = [
        {"type": e.type, "subject": e.subject, "data": e.data}
        for e in events.published
    ]
out["after"] = stock()
out["reservations"] = list(
    Reservation.objects.values_list("order_id", "product_id", "quantity")
)
out["dead"] = list(DeadLetter.objects.values_list("reason", "type"))
print(json.dumps(out))
"""


def test_catalog_reserves_all_items_of_an_order_or_none(tmp_path: Path) -> None:
    out, _ = run_in("catalog", CATALOG_PRELUDE + RESERVE, tmp_path)

    before, after_all, after = out["before"], out["after_all"], out["after"]
    assert out["all"] == ["handled", ""]
    # The same event again (a redelivery) is in the inbox: no second effect.
    assert out["again"] == ["duplicate", ""]
    assert (after_all["KB-001"], after_all["MN-003"]) == (20, 3)
    assert {**after_all, "KB-001": 25, "MN-003": 8} == before
    # Short of one product and naming an unknown one: nothing is taken.
    assert out["none"] == ["handled", ""]
    assert after == after_all
    assert out["invalid"] == ["rejected", "invalid_data"]
    assert out["reservations"] == [[1, 1, 5], [1, 3, 5]]
    assert out["published"] == [
        {
            "type": "catalog.stock.reserved.v1",
            "subject": "order-1",
            "data": {
                "order_id": 1,
                "items": [
                    {"product_id": 1, "quantity": 5},
                    {"product_id": 3, "quantity": 5},
                ],
            },
        },
        {
            "type": "catalog.stock.rejected.v1",
            "subject": "order-2",
            "data": {
                "order_id": 2,
                "reasons": [
                    {
                        "product_id": 3,
                        "code": "insufficient_stock",
                        "detail": "Not enough stock: only 3 of MN-003 left.",
                        "available": 3,
                    },
                    {
                        "product_id": 999,
                        "code": "unknown_product",
                        "detail": "The catalog has no product with this id.",
                    },
                ],
            },
        },
    ]
    assert out["dead"] == [["invalid_data", "orders.order.placed.v1"]]


# Each step prints the bodies its service sent to the broker, as signed.
PLACE = """
from django_microkit.testing import capture_events, fake_service

with fake_service("catalog") as catalog, capture_events() as events:
    catalog.get("/api/products/3/", json={"id": 3, "sku": "MN-003", "price": "249.99"})
    small = order((3, 3))["location"]
    large = order((3, 6))["location"]
    bodies = [sent.body for sent in events.transport.sent]
print(json.dumps({"locations": [small, large], "bodies": bodies}))
"""

HANDLE = """
import sys
with capture_events() as events:
    outcomes = [events.deliver(body) for body in json.load(sys.stdin)]
    bodies = [sent.body for sent in events.transport.sent]
print(json.dumps({"outcomes": [[o.status, o.reason] for o in outcomes],
                  "bodies": bodies, "stock": stock()}))
"""

ANSWERED = """
import sys
from django_microkit.testing import capture_events

with capture_events() as events:
    answers = json.load(sys.stdin)
    outcomes = [events.deliver(body) for body in answers["bodies"]]
    # A redelivery of the same answer: no second effect.
    outcomes.append(events.deliver(answers["bodies"][0]))
orders = [client.get(location).json() for location in answers["locations"]]
print(json.dumps({"outcomes": [[o.status, o.reason] for o in outcomes],
                  "orders": [[o["status"], o["rejection_reasons"]] for o in orders]}))
"""


def test_the_saga_across_both_services_with_their_own_keys(tmp_path: Path) -> None:
    placed, _ = run_in("orders", PRELUDE + PLACE, tmp_path)
    # catalog verifies orders' events with orders' public key...
    handled, _ = run_in(
        "catalog",
        CATALOG_PRELUDE + HANDLE,
        tmp_path,
        stdin=json.dumps(placed["bodies"]),
    )
    assert handled["outcomes"] == [["handled", ""], ["handled", ""]]
    # 8 in stock: the first order takes 3, the second (6) is refused.
    assert handled["stock"]["MN-003"] == 5
    # ...and orders verifies catalog's answers with catalog's.
    answered, _ = run_in(
        "orders",
        PRELUDE + ANSWERED,
        tmp_path,
        stdin=json.dumps({**placed, "bodies": handled["bodies"]}),
    )
    assert answered["outcomes"] == [
        ["handled", ""],
        ["handled", ""],
        ["duplicate", ""],
    ]
    confirmed, rejected = answered["orders"]
    assert confirmed == ["confirmed", []]
    assert rejected[0] == "rejected"
    assert [reason["code"] for reason in rejected[1]] == ["insufficient_stock"]


def test_an_event_signed_by_anyone_else_is_refused(tmp_path: Path) -> None:
    # orders' placed event, signed with a key of orders' kid that is not its.
    forged = """
from django_microkit.service_auth.keys import generate_key

private, _ = generate_key("EdDSA")
forger = load_key(ORDERS_KEY_ID, "EdDSA", private, service="orders")
body = encode_event(
    new_event("orders", "orders.order.placed.v1",
              {"order_id": 1, "items": [{"product_id": 1, "quantity": 1}]},
              "order-1"),
    forger,
)
with capture_events() as events:
    outcome = events.deliver(body)
print(json.dumps({"outcome": [outcome.status, outcome.reason], "stock": stock(),
                  "published": events.types}))
"""
    out: Any
    out, _ = run_in("catalog", CATALOG_PRELUDE + forged, tmp_path)
    assert out["outcome"] == ["rejected", "bad_signature"]
    assert out["stock"]["KB-001"] == 25
    assert out["published"] == []
