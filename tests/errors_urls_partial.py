"""A root URLconf that wires all error views but handler500 (check W012)."""

from __future__ import annotations

from tests.urls import handler400, handler403, handler404, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "urlpatterns"]
