"""The microkit stack with the access line turned off, to show what it costs."""

from __future__ import annotations

from benchmarks.stacks.microkit import *  # noqa: F403
from benchmarks.stacks.microkit import MICROKIT

MICROKIT = {**MICROKIT, "ACCESS_LOG": {"ENABLED": False}}
