"""Settings of the catalog example service: products and their stock."""

from __future__ import annotations

from common_settings import *  # noqa: F403
from common_settings import (
    DEV_ORDERS_PUBLIC_KEY,
    INSTALLED_APPS,
    ORDERS_KEY_ID,
    database,
    key_source,
    microkit,
    spectacular,
)

INSTALLED_APPS = [*INSTALLED_APPS, "catalog"]
ROOT_URLCONF = "catalog.urls"
WSGI_APPLICATION = "catalog.wsgi.application"
DATABASES = database("catalog")

MICROKIT = {
    **microkit("catalog"),
    # catalog accepts tokens from orders, verified with its public key.
    "SERVICE_AUTH": {
        "PEERS": {
            "orders": [
                {
                    "kid": ORDERS_KEY_ID,
                    "alg": "EdDSA",
                    "key": key_source("ORDERS_PUBLIC_KEY", DEV_ORDERS_PUBLIC_KEY),
                }
            ],
        },
    },
}

SPECTACULAR_SETTINGS = spectacular("catalog", "Products and their stock.")
