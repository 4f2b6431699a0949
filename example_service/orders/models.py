from __future__ import annotations

from decimal import Decimal

from django.db import models


class Order(models.Model):
    """An order, placed ``pending``: the catalog reserves its stock (or
    refuses to) and says so in an event, which makes it ``confirmed`` or
    ``rejected``, with the catalog's reason for each item it refused."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"

    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    #: Why the catalog refused the order: one entry per item it could not
    #: reserve (``product_id``, ``code``, ``detail``, and ``available``).
    rejection_reasons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def total(self) -> Decimal:
        return sum(
            (item.unit_price * item.quantity for item in self.items.all()),
            Decimal("0.00"),
        )


class OrderItem(models.Model):
    order = models.ForeignKey(Order, related_name="items", on_delete=models.CASCADE)
    # The product lives in the catalog service: only its id and the price paid
    # are kept here, never a foreign key across services.
    product_id = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
