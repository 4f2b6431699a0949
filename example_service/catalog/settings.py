"""Settings of the catalog example service: products and their stock."""

from __future__ import annotations

from common_settings import *  # noqa: F403
from common_settings import (
    CATALOG_KEY_ID,
    DEV_CATALOG_SIGNING_KEY,
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
    # A placed order reserves its stock (the events worker runs the handler).
    **microkit("catalog", {"orders.order.placed.v1": "catalog.events.OrderPlaced"}),
    "SERVICE_AUTH": {
        # catalog accepts tokens and events from orders, verified with its
        # public key.
        "PEERS": {
            "orders": [
                {
                    "kid": ORDERS_KEY_ID,
                    "alg": "EdDSA",
                    "key": key_source("ORDERS_PUBLIC_KEY", DEV_ORDERS_PUBLIC_KEY),
                }
            ],
        },
        # catalog signs the events it publishes (stock reserved or rejected).
        "SIGNING_KEYS": [
            {
                "kid": CATALOG_KEY_ID,
                "alg": "EdDSA",
                "key": key_source("CATALOG_SIGNING_KEY", DEV_CATALOG_SIGNING_KEY),
            }
        ],
    },
    # Version 2 is current; version 1 (price as a number, no stock) is being
    # retired. Clients that name no version get version 2.
    "VERSIONING": {
        "VERSIONS": ["1", "2"],
        "DEFAULT_VERSION": "2",
        "DEPRECATED": {
            "1": {
                "deprecated_since": "2026-09-01",
                "sunset": "2030-06-30",
                "link": "https://developer.example.com/catalog/v1-retirement",
            },
        },
    },
}

SPECTACULAR_SETTINGS = spectacular("catalog", "Products and their stock.")
