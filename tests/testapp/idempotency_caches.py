"""A cache that fails on demand, standing in for an unreachable Redis."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.locmem import LocMemCache


class FailingCache(LocMemCache):
    """Local memory cache whose operations named in ``OPTIONS["FAIL"]`` raise
    :class:`ConnectionError`, as a Redis client does when the server is gone.

    With ``OPTIONS["MISS"]`` set, ``get()`` finds nothing, as when a key expires
    or is deleted between two calls.
    """

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self.failing = frozenset(options.pop("FAIL", ()))
        self.missing = bool(options.pop("MISS", False))
        super().__init__(name, {**params, "OPTIONS": options})

    def _fail(self, operation: str) -> None:
        if operation in self.failing:
            raise ConnectionError(f"cache {operation} failed")

    def add(self, *args: Any, **kwargs: Any) -> bool:
        self._fail("add")
        return super().add(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._fail("get")
        value = super().get(*args, **kwargs)
        return None if self.missing else value

    def set(self, *args: Any, **kwargs: Any) -> None:
        self._fail("set")
        super().set(*args, **kwargs)
