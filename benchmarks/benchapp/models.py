from __future__ import annotations

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    size = models.IntegerField()

    class Meta:
        app_label = "benchapp"
        ordering = ["id"]
