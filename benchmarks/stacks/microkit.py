"""django-microkit as a service runs it: every middleware, the DRF wiring of
``rest_framework_defaults()`` (problem-details errors, the paginator, negotiated
versioning), the health and service-info routes with readiness on the database
and the cache, and the JSON access line through ``logging_config()``.

The access line does not carry the client address (``ACCESS_LOG.CLIENT_ADDRESS``
is off by default). Lines go to ``BENCH_LOG_FILE`` (``/dev/null`` by default),
the same sink as the peer stack's.
"""

from __future__ import annotations

import os

import django_microkit
import django_microkit.logging
from benchmarks.stacks.common import *  # noqa: F403
from benchmarks.stacks.common import INSTALLED_APPS, REST_FRAMEWORK

ROOT_URLCONF = "benchmarks.stacks.microkit_urls"
INSTALLED_APPS = [*INSTALLED_APPS, "drf_spectacular", "django_microkit"]
MIDDLEWARE = [
    "django_microkit.request_id.RequestIDMiddleware",
    "django_microkit.errors.ProblemMiddleware",
    "django_microkit.versioning.VersionHeadersMiddleware",
]
CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure"
REST_FRAMEWORK = {
    **{k: v for k, v in REST_FRAMEWORK.items() if k != "PAGE_SIZE"},
    **django_microkit.rest_framework_defaults(),
}
MICROKIT = {
    "SERVICE_NAME": "bench",
    "SERVICE_VERSION": "1.0.0",
    "HEALTH": {"READINESS_CHECKS": ["database", "cache"]},
    "PAGINATION": {"PAGE_SIZE": 20},
    "ACCESS_LOG": {"ENABLED": True, "CLIENT_ADDRESS": False},
}

LOG_FILE = os.environ.get("BENCH_LOG_FILE", os.devnull)
LOGGING = django_microkit.logging.logging_config()
LOGGING["handlers"]["django_microkit"] = {
    "class": "logging.FileHandler",
    "filename": LOG_FILE,
    "formatter": "django_microkit",
}
