"""System checks of ``MICROKIT["PAGINATION"]`` (E030–E033, W030–W031)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.checks import CheckMessage

from django_microkit.checks import (
    Issue,
    did_you_mean,
    is_int,
    is_subclass_of,
    rest_framework_value,
)
from django_microkit.conf import microkit_settings
from django_microkit.pagination.offset import COUNT_MODES

__all__ = ["check_pagination"]


def check_pagination(**kwargs: Any) -> list[CheckMessage]:
    """``MICROKIT["PAGINATION"]`` is coherent and DRF pages with it."""
    config: Mapping[str, Any] = microkit_settings.PAGINATION
    where = "MICROKIT['PAGINATION']"
    issues: list[Issue] = []
    page_size, max_page_size = config["PAGE_SIZE"], config["MAX_PAGE_SIZE"]
    sizes_valid = True
    for key in ("PAGE_SIZE", "MAX_PAGE_SIZE"):
        if is_int(config[key]) and config[key] < 1:
            sizes_valid = False
            issues.append(
                Issue(
                    "django_microkit.E030",
                    f"{where}[{key!r}] is {config[key]}; a page holds at least one "
                    "item.",
                    f"Set {where}[{key!r}] to 1 or more.",
                )
            )
    if (
        sizes_valid
        and is_int(page_size)
        and is_int(max_page_size)
        and max_page_size < page_size
    ):
        issues.append(
            Issue(
                "django_microkit.E031",
                f"{where}['MAX_PAGE_SIZE'] ({max_page_size}) is smaller than "
                f"{where}['PAGE_SIZE'] ({page_size}).",
                "The default page size must be a size clients may ask for: "
                "raise MAX_PAGE_SIZE or lower PAGE_SIZE.",
            )
        )
    count = config["COUNT"]
    if isinstance(count, str) and count not in COUNT_MODES:
        issues.append(
            Issue(
                "django_microkit.E032",
                f"{where}['COUNT'] is {count!r}, not one of "
                + ", ".join(repr(mode) for mode in COUNT_MODES)
                + ".",
                "'exact' counts every page, 'none' never counts, 'prefer' "
                "counts when the client sends 'Prefer: count=exact'."
                + did_you_mean(count, COUNT_MODES),
            )
        )
    for key, minimum in (("COUNT_LIMIT", 1), ("MAX_OFFSET", 0)):
        value = config[key]
        if is_int(value) and value < minimum:
            issues.append(
                Issue(
                    "django_microkit.E033",
                    f"{where}[{key!r}] is {value}; it must be at least {minimum} "
                    "(or None for no limit).",
                    f"Set {where}[{key!r}] to None or a number of rows.",
                )
            )
    paginator = rest_framework_value("DEFAULT_PAGINATION_CLASS")
    if not is_subclass_of(paginator, "django_microkit.pagination.BasePagination"):
        issues.append(
            Issue(
                "django_microkit.W030",
                f"REST_FRAMEWORK['DEFAULT_PAGINATION_CLASS'] is {paginator!r}, not a "
                "django-microkit paginator: list endpoints will not answer with the "
                "shared envelope.",
                "Use django_microkit.pagination.PageNumberPagination, "
                "LimitOffsetPagination or CursorPagination (rest_framework_defaults() "
                "sets the first).",
            )
        )
    if rest_framework_value("PAGE_SIZE") is not None:
        issues.append(
            Issue(
                "django_microkit.W031",
                "REST_FRAMEWORK['PAGE_SIZE'] is set but django-microkit paginators "
                "take their page size from MICROKIT['PAGINATION'].",
                "Move the value to MICROKIT['PAGINATION']['PAGE_SIZE'] and "
                "remove it from REST_FRAMEWORK.",
            )
        )
    return [issue.message() for issue in issues]
