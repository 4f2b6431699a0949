"""Settings of the orders example service: orders of catalog products."""

from __future__ import annotations

import os

from common_settings import *  # noqa: F403
from common_settings import (
    CATALOG_KEY_ID,
    DEV_CATALOG_PUBLIC_KEY,
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
    # The catalog's answer to a placed order confirms or rejects it (the
    # events worker runs the handlers).
    **microkit(
        "orders",
        {
            "catalog.stock.reserved.v1": "orders.events.StockReserved",
            "catalog.stock.rejected.v1": "orders.events.StockRejected",
        },
    ),
    # The services orders calls, through django_microkit.ServiceClient.
    "SERVICES": {
        "catalog": {
            # Where the catalog service answers.
            "BASE_URL": os.environ.get("CATALOG_URL", "http://127.0.0.1:8001"),
            "TIMEOUT": (0.5, 3.0),
            "DEADLINE": 5.0,
            # Three failed attempts in a row and orders stops calling the
            # catalog for 10 s, answering 503 at once instead of waiting.
            "BREAKER": {"FAILURES": 3, "COOL_DOWN": 10},
        },
    },
    "SERVICE_AUTH": {
        # orders signs the tokens of its calls to catalog (sent by
        # ServiceClient) and the events it publishes.
        "SIGNING_KEYS": [
            {
                "kid": ORDERS_KEY_ID,
                "alg": "EdDSA",
                "key": key_source("ORDERS_SIGNING_KEY", DEV_ORDERS_SIGNING_KEY),
            }
        ],
        # orders accepts events from catalog, verified with its public key.
        "PEERS": {
            "catalog": [
                {
                    "kid": CATALOG_KEY_ID,
                    "alg": "EdDSA",
                    "key": key_source("CATALOG_PUBLIC_KEY", DEV_CATALOG_PUBLIC_KEY),
                }
            ],
        },
    },
}

SPECTACULAR_SETTINGS = spectacular("orders", "Orders of catalog products.")
