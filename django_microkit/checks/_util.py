"""Small helpers the system checks share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def is_subclass_path(actual: Any, expected_path: str) -> bool:
    if actual == expected_path:
        return True
    if isinstance(actual, str):
        try:
            actual = import_string(actual)
        except ImportError:
            return False
    expected = import_string(expected_path)
    if actual is expected:
        return True
    return (
        isinstance(actual, type)
        and isinstance(expected, type)
        and issubclass(actual, expected)
    )


def rest_framework_value(key: str) -> Any:
    configured = getattr(settings, "REST_FRAMEWORK", {})
    return configured.get(key) if isinstance(configured, Mapping) else None


def is_subclass_of(value: Any, base_path: str) -> bool:
    return value is not None and is_subclass_path(value, base_path)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
