from __future__ import annotations

import requests

from tests.e2e.conftest import Stack


def test_stack_up(stack: Stack, mint) -> None:
    r = requests.get(stack.catalog.url + "/api/products/")
    print(r.status_code, r.headers, r.text[:300])
    r = requests.post(stack.orders.url + "/api/orders/", json={"items": [{"product_id": 1, "quantity": 1}]})
    print(r.status_code, r.headers, r.text[:300])
    t = mint("catalog", "catalog:write")
    print(t)
    assert 0
