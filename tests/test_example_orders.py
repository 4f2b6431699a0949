"""The orders example service calls the catalog through ServiceClient: product
lookups, stock reservations, and a 503 problem, fast, once the catalog is down
and the breaker open."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_service" / "manage.py"

PRELUDE = """
import json, time
from django.core.management import call_command
from rest_framework.test import APIClient

call_command("migrate", verbosity=0)
client = APIClient()


def order(*items):
    started = time.monotonic()
    response = client.post(
        "/api/orders/",
        {"items": [{"product_id": p, "quantity": q} for p, q in items]},
        format="json",
    )
    return {
        "status": response.status_code,
        "body": response.json(),
        "retry_after": response.get("Retry-After"),
        "seconds": time.monotonic() - started,
    }
"""

WITH_FAKE_CATALOG = """
from django_microkit.testing import fake_service

out = {}
with fake_service("catalog") as catalog:
    catalog.get("/api/products/1/", json={"id": 1, "sku": "PEN", "price": "2.50"})
    catalog.post("/api/products/1/reserve/", json={"id": 1, "stock": 8})
    out["placed"] = order((1, 2))
    catalog.get("/api/products/2/", status=404, problem={"code": "not_found"})
    out["unknown"] = order((2, 1))
    catalog.post(
        "/api/products/1/reserve/",
        status=409,
        problem={
            "code": "insufficient_stock",
            "title": "Conflict",
            "detail": "Only 8 of PEN left.",
            "available": 8,
        },
    )
    out["short"] = order((1, 50))
    catalog.get("/api/products/1/", status=500, text="boom")
    out["failing"] = order((1, 1))
    out["calls"] = [
        [c.method, c.path, c.json() if c.body else None,
         c.headers.get("Authorization", "").startswith("Bearer ")]
        for c in catalog.calls
    ]
print(json.dumps(out))
"""

CATALOG_DOWN = """
from orders.catalog import catalog

out = {"orders": [order((1, 1)) for _ in range(3)], "breaker": catalog.breaker.state}
print(json.dumps(out))
"""


def run_in_orders(script: str, tmp_path: Path, **env: str) -> tuple[Any, list[Any]]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'orders.sqlite3'}",
        DJANGO_ALLOWED_HOSTS="testserver",
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        **env,
    )
    result = subprocess.run(
        [sys.executable, str(MANAGE), "shell", "-c", PRELUDE + script]
        + ["--settings=orders.settings"],
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


def test_orders_checks_and_reserves_through_the_client(tmp_path: Path) -> None:
    out, _ = run_in_orders(WITH_FAKE_CATALOG, tmp_path)

    placed = out["placed"]
    assert placed["status"] == 201
    assert (placed["body"]["total"], placed["body"]["items"]) == (
        "5.00",
        [{"product_id": 1, "quantity": 2, "unit_price": "2.50"}],
    )

    unknown = out["unknown"]
    # A product the catalog does not have conflicts with its current state.
    assert (unknown["status"], unknown["body"]["code"]) == (409, "unknown_product")
    assert unknown["body"]["errors"][0]["pointer"] == "/items/0/product_id"

    short = out["short"]
    assert short["status"] == 409
    assert {k: short["body"][k] for k in ("code", "title", "detail", "errors")} == {
        "code": "insufficient_stock",
        "title": "Conflict",
        "detail": "Only 8 of PEN left.",
        "errors": [
            {
                "code": "insufficient_stock",
                "detail": "Only 8 of PEN left.",
                "pointer": "/items/0/quantity",
            }
        ],
    }

    failing = out["failing"]
    assert (failing["status"], failing["body"]["code"]) == (503, "catalog_unavailable")
    assert failing["retry_after"] == "5"

    assert out["calls"] == [
        ["GET", "/api/products/1/", None, True],
        ["POST", "/api/products/1/reserve/", {"quantity": 2}, True],
        ["GET", "/api/products/2/", None, True],
        ["GET", "/api/products/1/", None, True],
        ["POST", "/api/products/1/reserve/", {"quantity": 50}, True],
        ["GET", "/api/products/1/", None, True],  # a 500 is not retried
    ]


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
