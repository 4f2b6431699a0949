"""Schema fuzzing: schemathesis generates requests from each service's own
OpenAPI document (every API version) and sends them to the real servers.

No answer may be a 5xx; every answer must conform to the document (status
code, content type, headers, body); every error must be a valid problem
document; every answer carries ``X-Request-ID``, and every API answer
``X-API-Version``. Writes carry a fresh service token each (tokens are single
use). Runs last: it changes and deletes catalog products.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.e2e.conftest import Results, Stack, is_valid_problem

#: Examples generated per operation and generation mode.
MAX_EXAMPLES = 20

load_all_checks()
#: Every check schemathesis has: status codes, content types, headers and
#: bodies as documented, schema-valid requests accepted, invalid ones refused,
#: and the authentication checks.
ALL_CHECKS = CHECKS.get_all()


def _header(response: Any, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


#: Refusals made before a version was chosen: they name none.
_UNVERSIONED_CODES = {"unsupported_version", "not_acceptable"}
#: Paths the API's routes match; a 404 for any other path comes from URL
#: resolution, before any versioned view ran (and names no version).
_ROUTED = re.compile(r"/api/[a-z]+/([^/.]+/)?(reserve/)?")


def _own_checks(response: Any, versioned: bool) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert _header(response, "X-Request-ID"), response.headers
    code = None
    if response.status_code >= 400:
        content_type = _header(response, "Content-Type") or ""
        assert content_type.startswith(
            ("application/problem+json", "application/json")
        ), response.headers
        document = json.loads(response.content)
        assert is_valid_problem(document), response.text[:500]
        code = document["code"]
        if code == "not_found" and not _ROUTED.fullmatch(document["instance"]):
            versioned = False
    if versioned and code not in _UNVERSIONED_CODES:
        assert _header(response, "X-API-Version"), (
            response.status_code,
            response.text[:300],
        )


@pytest.fixture(scope="module")
def cursors(stack: Stack) -> list[str]:
    """Cursors of orders' list, taken from its links: a cursor is opaque and
    signed, so the schema gives it ``format: cursor`` and only these are
    valid. Orders are placed first, while the catalog still has its products."""
    for _ in range(3):
        placed = requests.post(
            f"{stack.orders.url}/api/orders/",
            json={"items": [{"product_id": 5, "quantity": 1}]},
            timeout=30,
        )
        assert placed.status_code == 202, placed.text
    found: list[str] = []
    url: str | None = f"{stack.orders.url}/api/orders/?page_size=1"
    while url is not None:
        page = requests.get(url, timeout=30).json()
        for link in (page["next"], page["previous"]):
            if link is not None:
                found.extend(parse_qs(urlsplit(link).query)["cursor"])
        url = page["next"]
    return sorted(set(found))


@pytest.mark.parametrize(
    ("service", "version"),
    [("catalog", "1"), ("catalog", "2"), ("orders", None)],
)
def test_schema_fuzzing(
    stack: Stack,
    mint: Callable[..., str],
    results: Results,
    cursors: list[str],
    service: str,
    version: str | None,
) -> None:
    process = getattr(stack, service)
    schemathesis.openapi.format("cursor", st.sampled_from(cursors))
    query = f"?version={version}" if version else ""
    schema = schemathesis.openapi.from_url(
        f"{process.url}/api/schema/{query}", timeout=30
    )
    cases = 0
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            headers = {"Authorization": f"Bearer {mint('catalog', 'catalog:write')}"}
            if version and "X-API-Version" not in (case.headers or {}):
                # A client of this version's document names the version; a
                # value schemathesis made up (a negative case) is sent as is.
                headers["X-API-Version"] = version
            if "Idempotency-Key" in (case.headers or {}) and (
                case.meta is None
                or case.meta.generation.mode == GenerationMode.POSITIVE
            ):
                # A key is unique per request, as the document asks; the ones
                # schemathesis makes up repeat ("0"), and a reused key with
                # another body is refused with 422 as it should be.
                headers["Idempotency-Key"] = uuid.uuid4().hex
            response = case.call(base_url=process.url, headers=headers, timeout=30)
            _own_checks(response, versioned=case.path.startswith("/api/"))
            case.validate_response(response, checks=ALL_CHECKS, headers=headers)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, reported below
            failures.append(f"{operation.label}: {exc}"[:2000])
    name = f"{service} v{version}" if version else service
    results.record(f"schemathesis {name}: operations", operations)
    results.record(f"schemathesis {name}: cases", cases)
    assert operations > 0
    assert not failures, "\n\n".join(failures)
