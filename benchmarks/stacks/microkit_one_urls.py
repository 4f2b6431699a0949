"""The microkit stack's routes without its error views."""

from __future__ import annotations

from benchmarks.stacks.microkit_urls import urlpatterns

__all__ = ["urlpatterns"]
