"""The test settings, with the MICROKIT of a test that starts a subprocess
given as JSON in MICROKIT_TEST_SETTINGS (so the child signs with the same keys)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

MICROKIT = json.loads(os.environ["MICROKIT_TEST_SETTINGS"])
