"""tests.settings for the gunicorn tests (tests/test_gunicorn.py): their own
routes, readiness on the cache only, and ``DRAIN["DELAY"]`` from
``MICROKIT_TEST_DRAIN_DELAY``."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import MICROKIT

ROOT_URLCONF = "tests.gunicorn_urls"
_DELAY = float(os.environ.get("MICROKIT_TEST_DRAIN_DELAY", "0"))
MICROKIT = {
    **MICROKIT,
    "DRAIN": {"DELAY": _DELAY},  # type: ignore[dict-item]
    "HEALTH": {"READINESS_CHECKS": ["cache"], "RESULT_TTL": 0},  # type: ignore[dict-item]
}
