from __future__ import annotations

from benchmarks.stacks.common import *  # noqa: F403

ROOT_URLCONF = "benchmarks.stacks.bare_drf_urls"
