"""How orders talks to the catalog service.

Through ``ServiceClient("catalog")``: timeouts, retries and the circuit breaker
come from ``MICROKIT["SERVICES"]["catalog"]``, and every call carries orders'
service token, the request ID and the trace context. Errors arrive as typed
exceptions (``NotFoundError``, ``ConflictError``, ``ServiceUnavailableError``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django_microkit.client import ServiceClient

catalog = ServiceClient("catalog")


def get_product(product_id: int) -> dict[str, Any]:
    """The product, with its price as a Decimal (``NotFoundError`` if none)."""
    product: dict[str, Any] = catalog.get(f"/api/products/{product_id}/")
    product["price"] = Decimal(product["price"])
    return product


def reserve(product_id: int, quantity: int) -> dict[str, Any]:
    """Take ``quantity`` units out of the product's stock (``ConflictError``
    with code ``insufficient_stock`` when there are fewer).

    Not retried: the catalog keeps no idempotency keys, so a repeated reservation
    whose first answer was lost could take the stock twice.
    """
    product: dict[str, Any] = catalog.post(
        f"/api/products/{product_id}/reserve/", {"quantity": quantity}
    )
    return product
