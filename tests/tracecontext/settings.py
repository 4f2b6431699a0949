"""Settings of the service the W3C Trace Context test suite drives."""

from __future__ import annotations

import os

from django_microkit.logging import logging_config

# The suite's harness: where the service sends the calls it is told to make.
HARNESS = (
    f"http://{os.environ.get('HARNESS_HOST', '127.0.0.1')}"
    f":{os.environ.get('HARNESS_PORT', '7777')}"
)

SECRET_KEY = "tracecontext-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.tracecontext.urls"
MIDDLEWARE = ["django_microkit.request_id.RequestIDMiddleware"]
DATABASES: dict[str, object] = {}
USE_TZ = True
MICROKIT = {
    "SERVICE_NAME": "tracecontext",
    # The harness is the only caller, on the loopback interface.
    "REQUEST_ID": {"TRUST": "any"},
    "SERVICES": {"harness": {"BASE_URL": HARNESS, "RETRIES": 0}},
}
LOGGING = logging_config(level="WARNING")
