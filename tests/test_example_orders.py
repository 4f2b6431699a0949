"""The orders example service reads prices from the catalog through
ServiceClient (and answers a 503 problem, fast, once the catalog is down and
the breaker open), saves an order pending with its ``orders.order.placed.v1``
event, answers 202 with its Location, and confirms or rejects it when the
catalog's answer arrives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_service" / "manage.py"

PRELUDE = """
import json, time
from django.core.management import call_command
from rest_framework.test import APIClient

call_command("migrate", verbosity=0)
client = APIClient()


def order(*items, **headers):
    started = time.monotonic()
    response = client.post(
        "/api/orders/",
        {"items": [{"product_id": p, "quantity": q} for p, q in items]},
        format="json",
        **headers,
    )
    return {
        "status": response.status_code,
        "body": response.json(),
        "location": response.get("Location"),
        "request_id": response.get("X-Request-ID"),
        "replayed": response.get("Idempotent-Replayed"),
        "retry_after": response.get("Retry-After"),
        "seconds": time.monotonic() - started,
    }


def published(events):
    return [
        {"type": e.type, "subject": e.subject, "data": e.data,
         "requestid": e.requestid, "source": e.source}
        for e in events.published
    ]
"""

WITH_FAKE_CATALOG = """
from django_microkit.events.models import OutboxEvent
from django_microkit.testing import capture_events, fake_service
from orders.models import Order

out = {}
with fake_service("catalog") as catalog, capture_events() as events:
    catalog.get("/api/products/1/", json={"id": 1, "sku": "PEN", "price": "2.50"})
    catalog.get("/api/products/3/", json={"id": 3, "sku": "INK", "price": "4.00"})
    out["placed"] = order((1, 2), (3, 1))
    catalog.get("/api/products/2/", status=404, problem={"code": "not_found"})
    out["unknown"] = order((1, 1), (2, 1))
    catalog.get("/api/products/1/", status=500, text="boom")
    out["failing"] = order((1, 1))
    out["calls"] = [
        [c.method, c.path, c.json() if c.body else None,
         c.headers.get("Authorization", "").startswith("Bearer ")]
        for c in catalog.calls
    ]
    out["published"] = published(events)
out["orders"] = Order.objects.count()
out["outbox"] = [[e.type, e.sent_at is not None] for e in OutboxEvent.objects.all()]
print(json.dumps(out))
"""

CATALOG_DOWN = """
from orders.catalog import catalog

out = {"orders": [order((1, 1)) for _ in range(3)], "breaker": catalog.breaker.state}
print(json.dumps(out))
"""


def run_in(
    service: str, script: str, tmp_path: Path, *, stdin: str = "", **env: str
) -> tuple[Any, list[Any]]:
    """Run ``script`` in a ``manage.py shell`` of ``service`` (its database a
    SQLite file of ``tmp_path``, kept between runs; ``stdin`` its input); its
    last JSON line, and the JSON lines before it (the log)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{tmp_path / f'{service}.sqlite3'}",
        EVENTS_FOLDER=str(tmp_path / "events-broker"),
        DJANGO_ALLOWED_HOSTS="testserver",
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        **env,
    )
    result = subprocess.run(
        [sys.executable, str(MANAGE), "shell", "-c", script]
        + [f"--settings={service}.settings"],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]
    return lines[-1], lines[:-1]


def run_in_orders(script: str, tmp_path: Path, **env: str) -> tuple[Any, list[Any]]:
    return run_in("orders", PRELUDE + script, tmp_path, **env)


def test_an_order_is_saved_pending_with_its_event_and_accepted(
    tmp_path: Path,
) -> None:
    out, _ = run_in_orders(WITH_FAKE_CATALOG, tmp_path)

    placed = out["placed"]
    assert placed["status"] == 202
    body = placed["body"]
    assert placed["location"] == f"/api/orders/{body['id']}/"
    assert (body["status"], body["rejection_reasons"], body["total"]) == (
        "pending",
        [],
        "9.00",
    )
    assert body["items"] == [
        {"product_id": 1, "quantity": 2, "unit_price": "2.50"},
        {"product_id": 3, "quantity": 1, "unit_price": "4.00"},
    ]
    # One event, for the one order saved, sent once its transaction committed;
    # it carries the placing request's ID.
    assert out["published"] == [
        {
            "type": "orders.order.placed.v1",
            "source": "orders",
            "subject": f"order-{body['id']}",
            "data": {
                "order_id": body["id"],
                "items": [
                    {"product_id": 1, "quantity": 2},
                    {"product_id": 3, "quantity": 1},
                ],
            },
            "requestid": placed["request_id"],
        }
    ]
    assert (out["orders"], out["outbox"]) == (1, [["orders.order.placed.v1", True]])

    unknown = out["unknown"]
    # A product the catalog does not have conflicts with its current state.
    assert (unknown["status"], unknown["body"]["code"]) == (409, "unknown_product")
    assert unknown["body"]["errors"][0]["pointer"] == "/items/1/product_id"

    failing = out["failing"]
    assert (failing["status"], failing["body"]["code"]) == (503, "catalog_unavailable")
    assert failing["retry_after"] == "5"

    # Only reads: the catalog reserves stock when the event reaches it.
    assert out["calls"] == [
        ["GET", "/api/products/1/", None, True],
        ["GET", "/api/products/3/", None, True],
        ["GET", "/api/products/1/", None, True],
        ["GET", "/api/products/2/", None, True],
        ["GET", "/api/products/1/", None, True],  # a 500 is not retried
    ]


ANSWERS = """
from django_microkit.events.models import DeadLetter
from django_microkit.testing import capture_events, fake_service

out = {}


def read(location):
    return client.get(location).json()


with fake_service("catalog") as catalog, capture_events() as events:
    catalog.get("/api/products/1/", json={"id": 1, "sku": "PEN", "price": "2.50"})
    first, second, third = (order((1, 1))["location"] for _ in range(3))
    ids = [read(location)["id"] for location in (first, second, third)]
    reasons = [
        {"product_id": 1, "code": "insufficient_stock",
         "detail": "Not enough stock: only 0 of PEN left.", "available": 0},
    ]

    def answer(kind, order_id, **data):
        outcome = events.receive(
            f"catalog.stock.{kind}.v1",
            {"order_id": order_id, **data},
            key=f"order-{order_id}",
        )
        return [outcome.status, outcome.reason]

    items = [{"product_id": 1, "quantity": 1}]
    out["reserved"] = answer("reserved", ids[0], items=items)
    out["rejected"] = answer("rejected", ids[1], reasons=reasons)
    # A second, late answer changes nothing: the order is decided.
    out["late"] = answer("reserved", ids[1], items=items)
    # An answer whose data is not what the handler declares is a dead letter.
    out["invalid"] = answer("rejected", ids[2], reasons=[])
    out["orders"] = [read(location) for location in (first, second, third)]
out["dead"] = list(DeadLetter.objects.values_list("reason", "type"))
print(json.dumps(out))
"""


def test_the_catalogs_answer_confirms_or_rejects_the_order(tmp_path: Path) -> None:
    out, _ = run_in_orders(ANSWERS, tmp_path)

    assert out["reserved"] == ["handled", ""]
    assert out["rejected"] == ["handled", ""]
    assert out["late"] == ["handled", ""]
    assert out["invalid"] == ["rejected", "invalid_data"]
    confirmed, rejected, pending = out["orders"]
    assert (confirmed["status"], confirmed["rejection_reasons"]) == ("confirmed", [])
    # GET shows why the catalog refused the order, item by item.
    assert (rejected["status"], rejected["rejection_reasons"]) == (
        "rejected",
        [
            {
                "product_id": 1,
                "code": "insufficient_stock",
                "detail": "Not enough stock: only 0 of PEN left.",
                "available": 0,
            }
        ],
    )
    assert (pending["status"], pending["rejection_reasons"]) == ("pending", [])
    assert out["dead"] == [["invalid_data", "catalog.stock.rejected.v1"]]


IDEMPOTENT = """
from django_microkit.testing import capture_events, fake_service
from orders.models import Order

with fake_service("catalog") as catalog, capture_events() as events:
    catalog.get("/api/products/1/", json={"id": 1, "sku": "PEN", "price": "2.50"})
    first = order((1, 1), HTTP_IDEMPOTENCY_KEY="same")
    retry = order((1, 1), HTTP_IDEMPOTENCY_KEY="same")
    types = events.types
print(json.dumps({"first": first, "retry": retry, "types": types,
                  "orders": Order.objects.count()}))
"""


def test_a_retried_order_with_its_key_is_placed_and_published_once(
    tmp_path: Path,
) -> None:
    out, _ = run_in_orders(IDEMPOTENT, tmp_path)

    first, retry = out["first"], out["retry"]
    assert (first["status"], first["replayed"]) == (202, None)
    assert (retry["status"], retry["replayed"]) == (202, "true")
    assert (retry["location"], retry["body"]) == (first["location"], first["body"])
    assert (out["orders"], out["types"]) == (1, ["orders.order.placed.v1"])


def test_a_stopped_catalog_gives_a_fast_503_once_the_breaker_is_open(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:  # a port where the catalog is not running
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out, log = run_in_orders(
        CATALOG_DOWN, tmp_path, CATALOG_URL=f"http://127.0.0.1:{port}"
    )
    first, second, third = out["orders"]
    for answer in (first, second, third):
        assert answer["status"] == 503
        assert answer["body"]["code"] == "catalog_unavailable"
    # The first order tried three times (connection refused), which opened
    # the breaker; the next ones are refused without calling the catalog.
    assert first["retry_after"] == "5"
    assert second["retry_after"] in {"9", "10"}
    assert second["seconds"] < 0.25
    assert third["seconds"] < 0.25
    assert out["breaker"] == "open"
    calls = [
        (line.get("attempts"), line.get("error"))
        for line in log
        if line.get("event") == "service_call"
    ]
    assert calls == [
        (3, "connection_error"),
        (0, "circuit_open"),
        (0, "circuit_open"),
    ]


SCHEMA = """
print(json.dumps(client.get("/api/schema/?format=json").json()))
"""


def test_the_schema_documents_the_accepted_order(tmp_path: Path) -> None:
    schema, _ = run_in_orders(SCHEMA, tmp_path)

    validate(schema)
    create = schema["paths"]["/api/orders/"]["post"]
    responses = create["responses"]
    assert "201" not in responses
    assert "pending" in responses["202"]["description"]
    assert responses["202"]["headers"]["Location"]["schema"] == {"type": "string"}
    assert "application/problem+json" in responses["409"]["content"]
    assert "503" in responses
    order = schema["components"]["schemas"]["Order"]
    assert order["properties"]["status"]["readOnly"] is True
    reasons = order["properties"]["rejection_reasons"]
    assert reasons["readOnly"] is True
    assert reasons["items"]["$ref"].endswith("/RejectionReason")
