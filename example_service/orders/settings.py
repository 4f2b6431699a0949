"""Settings of the orders example service: orders of catalog products."""

from __future__ import annotations

import os

from common_settings import *  # noqa: F403
from common_settings import (
    DEV_ORDERS_SIGNING_KEY,
    INSTALLED_APPS,
    ORDERS_KEY_ID,
    database,
    key_source,
    microkit,
    spectacular,
)

INSTALLED_APPS = [*INSTALLED_APPS, "orders"]
ROOT_URLCONF = "orders.urls"
WSGI_APPLICATION = "orders.wsgi.application"
DATABASES = database("orders")

MICROKIT = {
    **microkit("orders"),
    # orders signs the tokens of its calls to catalog:
    # django_microkit.mint_service_token("catalog", scopes=["catalog:write"]).
    "SERVICE_AUTH": {
        "SIGNING_KEYS": [
            {
                "kid": ORDERS_KEY_ID,
                "alg": "EdDSA",
                "key": key_source("ORDERS_SIGNING_KEY", DEV_ORDERS_SIGNING_KEY),
            }
        ],
    },
}

# Where the catalog service answers.
CATALOG_URL = os.environ.get("CATALOG_URL", "http://127.0.0.1:8001")

SPECTACULAR_SETTINGS = spectacular("orders", "Orders of catalog products.")
