"""The example services start cleanly: system checks and migrations are in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_service" / "manage.py"


def service_env(service: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a service process: its own SQLite database, and this
    checkout's django_microkit first on the path (as pytest has it)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    return env


def manage(
    service: str, *args: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args, f"--settings={service}.settings"],
        capture_output=True,
        text=True,
        env=service_env(service, tmp_path),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_example_service_checks_and_migrates(service: str, tmp_path: Path) -> None:
    check = manage(service, "check", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout
    migrations = manage(
        service, "makemigrations", "--check", "--dry-run", tmp_path=tmp_path
    )
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    migrate = manage(service, "migrate", "--noinput", tmp_path=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    health = manage(service, "microkit_health", "--probe", "ready", tmp_path=tmp_path)
    assert health.returncode == 0, health.stdout + health.stderr
    assert [line.split()[:2] for line in health.stdout.splitlines()[1:3]] == [
        ["database:default", "pass"],
        ["cache:default", "pass"],
    ]


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_example_service_logs_json_with_request_ids(
    service: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "example_probe.py"), service],
        capture_output=True,
        text=True,
        env=service_env(service, tmp_path),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    probes = {line["probe"]: line for line in lines if "probe" in line}
    assert probes["response"]["header"] == f"{service}-probe"
    (access, *_) = [
        line for line in lines if line.get("logger") == "django_microkit.access"
    ]
    assert access["request_id"] == f"{service}-probe"
    assert access["service"] == service
    assert (access["status"], access["path"]) == (404, "/api/no-such-thing/")
    if service == "orders":
        sent = {k.lower(): v for k, v in probes["catalog call"]["headers"].items()}
        assert sent["x-request-id"] == "orders-calls-catalog"
        assert sent["traceparent"].startswith("00-")
        assert sent["authorization"].startswith("Bearer ")
        assert sent["user-agent"].startswith("orders/1.0.0 django-microkit/")


# Requests sent to the catalog by test_catalog_answers_errors_with_problems; the
# script prints [status, content type, body] for each.
CATALOG_ERRORS = """
import base64, json
from django.contrib.auth.models import User
from django.test import Client
# Writes take a staff user (or orders' service token).
User.objects.create_user("staff", password="pw", is_staff=True)
staff = "Basic " + base64.b64encode(b"staff:pw").decode()
client = Client(
    HTTP_HOST="localhost", HTTP_AUTHORIZATION=staff, raise_request_exception=False
)
calls = [
    ("post", "/api/products/", {"sku": "KB-001", "name": "", "price": "-1"}),
    ("patch", "/api/products/1/", {"stock": -5}),
    ("post", "/api/products/3/reserve/", {"quantity": 50}),
    ("post", "/api/products/3/reserve/", {"quantity": 0}),
    ("post", "/api/products/3/reserve/", {"quantity": 2}),
    ("get", "/api/products/999/", None),
    ("get", "/api/nowhere/", None),
    ("get", "/api/schema/?format=json", None),
]
results = []
for method, url, body in calls:
    data = json.dumps(body) if body else None
    kwargs = {"content_type": "application/json"} if body else {}
    response = getattr(client, method)(url, data, **kwargs)
    body = response.json()
    if isinstance(body, dict) and "request_id" in body:
        # the problem names the request the response header names
        assert body.pop("request_id") == response["X-Request-ID"]
    results.append([response.status_code, response["Content-Type"], body])
print(json.dumps(results))
"""


def test_catalog_answers_errors_with_problems(tmp_path: Path) -> None:
    assert manage("catalog", "migrate", "--noinput", tmp_path=tmp_path).returncode == 0
    run = manage("catalog", "shell", "-c", CATALOG_ERRORS, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.splitlines()[-1])
    problem = "application/problem+json"

    status, content_type, body = results[0]
    assert (status, content_type, body["code"]) == (400, problem, "validation_error")
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [
        ("/sku", "unique"),
        ("/name", "blank"),
        ("/price", "min_value"),
    ]
    status, _, body = results[1]
    assert (status, body["errors"][0]["pointer"]) == (400, "/stock")
    assert results[2] == [
        409,
        problem,
        {
            "type": "about:blank",
            "title": "Conflict",
            "status": 409,
            "detail": "Not enough stock: only 8 of MN-003 left.",
            "instance": "/api/products/3/reserve/",
            "code": "insufficient_stock",
            "available": 8,
        },
    ]
    assert results[3][2]["errors"] == [
        {
            "code": "min_value",
            "detail": "Ensure this value is greater than or equal to 1.",
            "pointer": "/quantity",
        }
    ]
    assert (results[4][0], results[4][2]["stock"]) == (200, 6)
    for status, content_type, body in results[5:7]:
        assert (status, content_type, body["code"]) == (404, problem, "not_found")

    schema = results[7][2]
    validate(schema)
    reserve = schema["paths"]["/api/products/{id}/reserve/"]["post"]
    assert sorted(reserve["responses"]) == [
        "200",
        "400",
        "401",
        "403",
        "404",
        "406",
        "409",
        "415",
        "500",
    ]
    assert reserve["security"] == [{"ServiceToken": []}, {"basicAuth": []}]
    assert schema["components"]["securitySchemes"]["ServiceToken"]["scheme"] == "bearer"


# Run in the catalog by test_catalog_pages_and_versions_products: one
# [status, headers, body] per request.
CATALOG_VERSIONS = """
import json
from django.core.management import call_command
from django.test import Client
from catalog.models import Product
call_command("migrate", verbosity=0)
Product.objects.bulk_create(
    Product(sku=f"SKU-{i:03d}", name=f"Product {i}", price="9.50", stock=i)
    for i in range(1, 26)
)
client = Client(HTTP_HOST="localhost")
calls = [
    ("/api/products/?page_size=10", {}),
    ("/api/products/?page_size=10&page=2", {"X-API-Version": "1"}),
    ("/api/products/1/", {"Accept": "application/json; version=1"}),
    ("/api/products/1/", {"X-API-Version": "3"}),
    ("/api/products/?page=9", {}),
    ("/api/schema/?version=1&format=json", {}),
    ("/api/schema/?version=2&format=json", {}),
]
results = []
for url, headers in calls:
    response = client.get(url, headers=headers)
    results.append([response.status_code, dict(response.headers), response.json()])
print(json.dumps(results))
"""


def run_script(service: str, script: str, tmp_path: Path) -> list[Any]:
    run = manage(service, "shell", "-c", script, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    results: list[Any] = json.loads(run.stdout.splitlines()[-1])
    return results


def test_catalog_pages_and_versions_products(tmp_path: Path) -> None:
    results = run_script("catalog", CATALOG_VERSIONS, tmp_path)
    (status, headers, body) = results[0]
    # Five products from the seed migration, 25 more from the script.
    assert (status, headers["X-API-Version"], body["count"]) == (200, "2", 30)
    assert body["results"][0] == {
        "id": 1,
        "sku": "KB-001",
        "name": "Mechanical keyboard",
        "price": "89.00",
        "stock": 25,
    }
    assert body["next"] == "http://localhost/api/products/?page_size=10&page=2"
    assert headers["Link"] == f'<{body["next"]}>; rel="next"'
    assert "Deprecation" not in headers

    # Version 1: price as a number, no stock, and the deprecation headers.
    (status, headers, body) = results[1]
    assert (status, headers["X-API-Version"]) == (200, "1")
    assert body["results"][0] == {
        "id": 11,
        "sku": "SKU-006",
        "name": "Product 6",
        "price": 9.5,
    }
    assert headers["Deprecation"] == "@1788220800"  # 2026-09-01
    assert headers["Sunset"] == "Sun, 30 Jun 2030 00:00:00 GMT"
    assert headers["Link"] == (
        '<http://localhost/api/products/?page_size=10&page=3>; rel="next", '
        '<http://localhost/api/products/?page_size=10&page=1>; rel="prev", '
        '<https://developer.example.com/catalog/v1-retirement>; rel="deprecation"'
    )
    (status, headers, body) = results[2]
    assert (status, headers["X-API-Version"], body["price"]) == (200, "1", 89.0)

    (status, headers, body) = results[3]
    assert (status, body["code"], body["supported_versions"]) == (
        400,
        "unsupported_version",
        ["1", "2"],
    )
    (status, headers, body) = results[4]
    assert (status, body["code"]) == (404, "page_not_found")

    v1, v2 = results[5][2], results[6][2]
    validate(v1)
    validate(v2)
    assert v1["paths"]["/api/products/"]["get"]["deprecated"] is True
    assert "deprecated" not in v2["paths"]["/api/products/"]["get"]
    assert sorted(v1["components"]["schemas"]["ProductV1"]["properties"]) == [
        "id",
        "name",
        "price",
        "sku",
    ]
    page = v2["components"]["schemas"]["PaginatedProductList"]
    assert sorted(page["properties"]) == ["count", "next", "previous", "results"]


# Run in orders by test_orders_are_paged_by_cursor.
ORDERS_PAGES = """
import json
from django.core.management import call_command
from django.test import Client
from orders.models import Order
call_command("migrate", verbosity=0)
for _ in range(5):
    Order.objects.create()
client = Client(HTTP_HOST="localhost")
results, url = [], "/api/orders/?page_size=2"
while url:
    response = client.get(url)
    body = response.json()
    results.append([response.status_code, dict(response.headers), body])
    url = body["next"]
    if len(results) == 1:
        Order.objects.create()  # placed while the client pages: no shifted page
print(json.dumps(results))
"""


def test_orders_are_paged_by_cursor(tmp_path: Path) -> None:
    results = run_script("orders", ORDERS_PAGES, tmp_path)
    assert [status for status, _, _ in results] == [200, 200, 200]
    assert all("count" not in body for _, _, body in results)
    assert [[o["id"] for o in body["results"]] for _, _, body in results] == [
        [5, 4],
        [3, 2],
        [1],
    ]
    headers = results[0][1]
    assert headers["X-API-Version"] == "1"
    assert headers["Link"] == f'<{results[0][2]["next"]}>; rel="next"'
