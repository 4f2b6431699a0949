"""How orders reads products from the catalog service."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests
from django.conf import settings

TIMEOUT = (1.0, 3.0)  # connect, read (seconds)


class ProductNotFound(Exception):
    """The catalog has no product with that id."""


class CatalogUnavailable(Exception):
    """The catalog service could not be reached or failed."""


def get_product(product_id: int) -> dict[str, Any]:
    url = f"{settings.CATALOG_URL}/api/products/{product_id}/"
    try:
        response = requests.get(url, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise CatalogUnavailable(str(exc)) from exc
    if response.status_code == 404:
        raise ProductNotFound(product_id)
    if response.status_code != 200:
        raise CatalogUnavailable(f"catalog answered {response.status_code}")
    product: dict[str, Any] = response.json()
    product["price"] = Decimal(product["price"])
    return product
