"""How orders reads products from the catalog service."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests
import structlog
from django.conf import settings

from django_microkit.request_id import outgoing_headers

TIMEOUT = (1.0, 3.0)  # connect, read (seconds)

log = structlog.get_logger(__name__)


class ProductNotFound(Exception):
    """The catalog has no product with that id."""


class CatalogUnavailable(Exception):
    """The catalog service could not be reached or failed."""


def get_product(product_id: int) -> dict[str, Any]:
    url = f"{settings.CATALOG_URL}/api/products/{product_id}/"
    try:
        # X-Request-ID and a child traceparent: the catalog's log lines for
        # this call carry the same request ID and trace-id as ours.
        response = requests.get(url, timeout=TIMEOUT, headers=outgoing_headers())
    except requests.RequestException as exc:
        log.warning("catalog unreachable", product_id=product_id, error=str(exc))
        raise CatalogUnavailable(str(exc)) from exc
    if response.status_code == 404:
        raise ProductNotFound(product_id)
    if response.status_code != 200:
        log.warning(
            "catalog failed", product_id=product_id, status=response.status_code
        )
        raise CatalogUnavailable(f"catalog answered {response.status_code}")
    product: dict[str, Any] = response.json()
    product["price"] = Decimal(product["price"])
    return product
