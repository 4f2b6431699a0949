from __future__ import annotations

from django.db import models


class Widget(models.Model):
    name = models.CharField(max_length=100)
    size = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "testapp"


# --- pagination -------------------------------------------------------------


class Shelf(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "testapp"
        ordering = ["-name"]


class Book(models.Model):
    """Rows to page through: non-unique, nullable and related ordering fields."""

    title = models.CharField(max_length=100)
    score = models.IntegerField()
    rank = models.IntegerField(null=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    published = models.DateTimeField()
    shelf = models.ForeignKey(Shelf, null=True, on_delete=models.SET_NULL)
    code = models.UUIDField(null=True)
    day = models.DateField(null=True)
    at = models.TimeField(null=True)
    length = models.DurationField(null=True)
    weight = models.FloatField(default=0.0)

    class Meta:
        app_label = "testapp"
