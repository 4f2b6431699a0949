"""Settings of the catalog example service: products and their stock."""

from __future__ import annotations

from common_settings import *  # noqa: F403
from common_settings import INSTALLED_APPS, database, microkit, spectacular

INSTALLED_APPS = [*INSTALLED_APPS, "catalog"]
ROOT_URLCONF = "catalog.urls"
WSGI_APPLICATION = "catalog.wsgi.application"
DATABASES = database("catalog")

MICROKIT = microkit("catalog")

SPECTACULAR_SETTINGS = spectacular("catalog", "Products and their stock.")
