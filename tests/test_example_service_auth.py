"""In the example services, catalog's writes take a token from orders with the
catalog:write scope, or a staff user; reads stay open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_service" / "manage.py"

# Run in catalog: migrate a fresh database, then call the products endpoint.
CATALOG_SCRIPT = """
import json, sys
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

call_command("migrate", verbosity=0)
User.objects.create_user("staff", password="pw", is_staff=True)
User.objects.create_user("clerk", password="pw")
tokens = json.loads(sys.stdin.read())
skus = iter(range(1, 100))


def post(**headers):
    product = {"sku": f"AUTH-{next(skus)}", "name": "Anvil", "price": "9.9"}
    response = APIClient().post("/api/products/", product, format="json", **headers)
    body = response.json()
    problem = response["Content-Type"] == "application/problem+json"
    return [response.status_code, body["code"] if problem else None,
            response.get("WWW-Authenticate")]


def basic(user):
    import base64
    return "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()


outcome = {
    "read": APIClient().get("/api/products/").status_code,
    "anonymous": post(),
    "scoped": post(HTTP_AUTHORIZATION="Bearer " + tokens["scoped"]),
    "replayed": post(HTTP_AUTHORIZATION="Bearer " + tokens["scoped"]),
    "unscoped": post(HTTP_AUTHORIZATION="Bearer " + tokens["unscoped"]),
    "staff": post(HTTP_AUTHORIZATION=basic("staff")),
    "clerk": post(HTTP_AUTHORIZATION=basic("clerk")),
}
print(json.dumps(outcome))
"""


def run(service: str, *args: str, stdin: str = "", tmp_path: Path) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith("ORDERS_")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    env["DJANGO_ALLOWED_HOSTS"] = "testserver"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    result = subprocess.run(
        [sys.executable, str(MANAGE), *args, f"--settings={service}.settings"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_catalog_writes_need_orders_with_the_scope_or_staff(tmp_path: Path) -> None:
    # The operator's way to get a token: the mint command, run as orders.
    mint = (
        "from django_microkit import mint_service_token as m; import json; "
        "print(json.dumps({'scoped': m('catalog', ['catalog:write']), "
        "'unscoped': m('catalog')}))"
    )
    tokens = run("orders", "shell", "-c", mint, tmp_path=tmp_path)
    outcome = json.loads(
        run("catalog", "shell", "-c", CATALOG_SCRIPT, stdin=tokens, tmp_path=tmp_path)
    )
    invalid = 'Bearer realm="catalog", error="invalid_token", error_description='
    basic = ', Basic realm="api"'
    assert outcome == {
        "read": 200,
        "anonymous": [401, "token_missing", 'Bearer realm="catalog"' + basic],
        "scoped": [201, None, None],
        "replayed": [
            401,
            "token_replayed",
            invalid + '"The service token has already been used."' + basic,
        ],
        "unscoped": [
            403,
            "insufficient_scope",
            'Bearer realm="catalog", error="insufficient_scope", scope="catalog:write"',
        ],
        "staff": [201, None, None],
        "clerk": [403, "permission_denied", None],
    }
