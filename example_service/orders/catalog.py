"""How orders reads the catalog service.

Through ``ServiceClient("catalog")``: timeouts, retries and the circuit breaker
come from ``MICROKIT["SERVICES"]["catalog"]``, and every call carries orders'
service token, the request ID and the trace context. Errors arrive as typed
exceptions (``NotFoundError``, ``ServiceUnavailableError``).

Only reads: stock is reserved by the catalog itself when it handles the
``orders.order.placed.v1`` event (see ``orders.events``).
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
