from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# Orders placed before the saga had their stock reserved synchronously.
_RENAMED = {"placed": "confirmed", "cancelled": "rejected"}


def rename(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Order = apps.get_model("orders", "Order")
    for old, new in _RENAMED.items():
        Order.objects.filter(status=old).update(status=new)


def unrename(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Order = apps.get_model("orders", "Order")
    for old, new in _RENAMED.items():
        Order.objects.filter(status=new).update(status=old)
    Order.objects.filter(status="pending").update(status="placed")


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("confirmed", "Confirmed"),
                    ("rejected", "Rejected"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="rejection_reasons",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(rename, unrename),
    ]
