from __future__ import annotations

from decimal import Decimal

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

PRODUCTS = [
    ("KB-001", "Mechanical keyboard", Decimal("89.00"), 25),
    ("MS-002", "Wireless mouse", Decimal("24.50"), 120),
    ("MN-003", "27-inch monitor", Decimal("249.99"), 8),
    ("HD-004", "USB-C hub", Decimal("39.90"), 60),
    ("CB-005", "HDMI cable, 2 m", Decimal("7.95"), 300),
]


def seed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Product = apps.get_model("catalog", "Product")
    for sku, name, price, stock in PRODUCTS:
        Product.objects.get_or_create(
            sku=sku, defaults={"name": name, "price": price, "stock": stock}
        )


def unseed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Product = apps.get_model("catalog", "Product")
    Product.objects.filter(sku__in=[sku for sku, *_ in PRODUCTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
