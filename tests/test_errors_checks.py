"""System checks of django_microkit.errors (E010–E019, W010–W019)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from django_microkit.errors import ProblemMiddleware
from django_microkit.errors.checks import check_errors

# The error checks and the generic settings checks; other features' checks
# (e.g. the request-ID middleware's own order check) are tested with them.
OWN_CHECKS = ("django_microkit.E00", "django_microkit.E01", "django_microkit.W01")


def found(**overrides: Any) -> dict[str, Any]:
    with override_settings(**overrides):
        return {m.id: m for m in run_checks() if m.id and m.id.startswith(OWN_CHECKS)}


class OwnMiddleware(ProblemMiddleware):
    pass


def test_test_settings_are_clean() -> None:
    assert found() == {}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("no.such.Handler", "cannot be imported"),
        ("django_microkit.errors.ProblemMiddleware", "is not a subclass"),
        ("django_microkit.errors.exception_handler", "is not a subclass"),
    ],
)
def test_e010_handler_class(path: str, reason: str) -> None:
    messages = found(MICROKIT={"SERVICE_NAME": "x", "ERRORS": {"HANDLER_CLASS": path}})
    assert list(messages) == ["django_microkit.E010"]
    assert reason in messages["django_microkit.E010"].msg


def test_e010_accepts_a_subclass() -> None:
    errors = {"HANDLER_CLASS": "tests.test_errors.LoudHandler"}
    assert found(MICROKIT={"SERVICE_NAME": "x", "ERRORS": errors}) == {}


def test_wrong_type_is_left_to_e003() -> None:
    messages = found(MICROKIT={"SERVICE_NAME": "x", "ERRORS": {"HANDLER_CLASS": 5}})
    assert list(messages) == ["django_microkit.E003"]


def own(messages: dict[str, Any]) -> list[str]:
    """This concern's check IDs: other concerns check their own middleware."""
    return [i for i in messages if re.fullmatch(r"django_microkit\.[EW]01\d", i)]


@pytest.mark.parametrize(
    "middleware", [[], ["django.middleware.common.CommonMiddleware"]]
)
def test_w010_middleware_missing(middleware: list[str]) -> None:
    messages = found(MIDDLEWARE=middleware)
    assert own(messages) == ["django_microkit.W010"]


@pytest.mark.parametrize(
    "middleware",
    [
        ["tests.test_errors_checks.OwnMiddleware"],
        ["no.such.Middleware", "django_microkit.errors.ProblemMiddleware"],
        [
            "django_microkit.request_id.RequestIDMiddleware",
            "django_microkit.errors.ProblemMiddleware",
        ],
    ],
)
def test_middleware_found_in_place(middleware: list[str]) -> None:
    assert "django_microkit.W010" not in found(MIDDLEWARE=middleware)


def test_w012_error_views_not_wired() -> None:
    messages = found(ROOT_URLCONF="tests.testapp.errors_urls")
    assert list(messages) == ["django_microkit.W012"]
    message = messages["django_microkit.W012"]
    assert "handler400, handler403, handler404, handler500 are not" in message.msg
    assert 'handler404 = "django_microkit.errors.page_not_found"' in message.hint


def test_w012_names_the_one_handler_missing() -> None:
    messages = found(ROOT_URLCONF="tests.errors_urls_partial")
    assert "handler500 is not" in messages["django_microkit.W012"].msg


def test_w012_leaves_a_broken_urlconf_to_django() -> None:
    with override_settings(ROOT_URLCONF="no.such.urls"):
        assert check_errors() == []


def test_w013_csrf_failure_view_not_wired() -> None:
    messages = found(CSRF_FAILURE_VIEW="django.views.csrf.csrf_failure")
    assert list(messages) == ["django_microkit.W013"]


def test_w013_leaves_a_missing_view_to_django() -> None:
    with override_settings(CSRF_FAILURE_VIEW="no.such.view"):
        assert check_errors() == []


@pytest.mark.parametrize(
    ("base", "ids"),
    [
        ("https://errors.example.com/", []),
        ("urn:problem:", []),
        ("/errors/", ["django_microkit.W014"]),
        ("errors.example.com/", ["django_microkit.W014"]),
    ],
)
def test_w014_type_base_uri_must_be_absolute(base: str, ids: list[str]) -> None:
    messages = found(MICROKIT={"SERVICE_NAME": "x", "ERRORS": {"TYPE_BASE_URI": base}})
    assert list(messages) == ids
