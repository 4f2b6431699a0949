from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Reservation(models.Model):
    """Units of a product taken out of stock for an order of the orders
    service: one row per product of the order, all written in the transaction
    that handled the order's ``orders.order.placed.v1`` event, or none."""

    # The order lives in the orders service: only its id is kept here.
    order_id = models.PositiveBigIntegerField()
    product = models.ForeignKey(
        Product, related_name="reservations", on_delete=models.PROTECT
    )
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id", "product"], name="catalog_one_reservation_per_item"
            )
        ]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.quantity} of {self.product_id}"
