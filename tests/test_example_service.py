"""The example services start cleanly: system checks and migrations are in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


# Requests sent to the catalog by test_catalog_answers_errors_with_problems; the
# script prints [status, content type, body] for each.
CATALOG_ERRORS = """
import json
from django.test import Client
client = Client(HTTP_HOST="localhost", raise_request_exception=False)
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
            "title": "Not enough stock.",
            "status": 409,
            "detail": "Only 8 of MN-003 left.",
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
    reserve = schema["paths"]["/api/products/{id}/reserve/"]["post"]["responses"]
    assert sorted(reserve) == ["200", "400", "404", "406", "409", "415", "500"]
