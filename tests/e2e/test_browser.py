"""Swagger UI in a real browser: headless Chromium (Debian's package) loads
``/api/docs/`` for each documented API version and a "Try it out" request
from the page succeeds."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("service", "version", "operation", "status"),
    [
        ("catalog", "1", "#operations-products-products_list", 200),
        ("catalog", "2", "#operations-products-products_list", 200),
        ("orders", None, "#operations-orders-orders_list", 200),
    ],
)
def test_swagger_ui_try_it_out(
    stack: Stack,
    browser: Any,
    service: str,
    version: str | None,
    operation: str,
    status: int,
) -> None:
    process = getattr(stack, service)
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    try:
        query = f"?version={version}" if version else ""
        page.goto(f"{process.url}/api/docs/{query}", wait_until="networkidle")
        page.wait_for_selector(operation, timeout=20_000)
        page.click(f"{operation} .opblock-summary")
        page.click(f"{operation} .try-out__btn")
        if version:
            header = page.locator(
                f"{operation} tr[data-param-name='X-API-Version'] input"
            )
            if header.count():
                header.fill(version)
        with page.expect_response(
            lambda response: (
                "/api/" in response.url
                and "/api/docs" not in response.url
                and "/api/schema" not in response.url
            )
        ) as answer:
            page.click(f"{operation} .execute")
        response = answer.value
        assert response.status == status, response.text()[:500]
        assert response.headers["x-request-id"]
        body = json.loads(response.text())
        assert "results" in body
        if version:
            assert response.headers["x-api-version"] == version
            if body["results"]:
                product = body["results"][0]
                # Version 1 shows the price as a number and no stock.
                assert ("stock" in product) == (version == "2"), product
        page.wait_for_selector(f"{operation} .live-responses-table", timeout=10_000)
        assert not failed, failed
    finally:
        page.close()
