"""tests.settings for the gunicorn tests (tests/test_gunicorn.py)."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import MICROKIT

ROOT_URLCONF = "tests.gunicorn_urls"
MICROKIT = {
    **MICROKIT,
    "DRAIN": {"DELAY": float(os.environ.get("MICROKIT_TEST_DRAIN_DELAY", "0"))},
    "HEALTH": {"READINESS_CHECKS": ["cache"], "RESULT_TTL": 0},
}
