"""The microkit stack plus django-health-check's own view, for ``probes.py``."""

from __future__ import annotations

from benchmarks.stacks.microkit import *  # noqa: F403
from benchmarks.stacks.microkit import INSTALLED_APPS

ROOT_URLCONF = "benchmarks.stacks.probes_urls"
INSTALLED_APPS = [*INSTALLED_APPS, "health_check"]
