"""Settings of an events worker a test starts in a subprocess: the test
settings, with the ``MICROKIT`` the test passes as JSON in
``MICROKIT_TEST_SETTINGS``."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

MICROKIT = json.loads(os.environ["MICROKIT_TEST_SETTINGS"])
