"""The test settings with service tokens as DRF's default authentication, as a
service that only ever talks to other services configures it."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REST_FRAMEWORK

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "django_microkit.service_auth.ServiceTokenAuthentication"
    ],
}
