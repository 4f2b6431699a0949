"""Settings the type checker loads: the test settings plus the example apps, so
django-stubs knows the models of every project the checker reads."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example_service"))

INSTALLED_APPS = [*INSTALLED_APPS, "catalog", "orders"]
