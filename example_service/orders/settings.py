"""Settings of the orders example service: orders of catalog products."""

from __future__ import annotations

import os

from common_settings import *  # noqa: F403
from common_settings import INSTALLED_APPS, database, microkit, spectacular

INSTALLED_APPS = [*INSTALLED_APPS, "orders"]
ROOT_URLCONF = "orders.urls"
WSGI_APPLICATION = "orders.wsgi.application"
DATABASES = database("orders")

MICROKIT = microkit("orders")

# Where the catalog service answers.
CATALOG_URL = os.environ.get("CATALOG_URL", "http://127.0.0.1:8001")

SPECTACULAR_SETTINGS = spectacular("orders", "Orders of catalog products.")
