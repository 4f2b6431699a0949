"""System checks of the consuming side of MICROKIT["EVENTS"]."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tests.service_auth_keys import TESTS_PUBLIC
from tests.testapp.event_handlers import HANDLERS

ORDERS_PEER = {
    "orders": [{"kid": "orders-1", "alg": "EdDSA", "key": {"value": TESTS_PUBLIC}}]
}


def ids(**events: Any) -> list[str]:
    microkit = {
        "SERVICE_NAME": "tests",
        "SERVICE_AUTH": {"PEERS": ORDERS_PEER},
        "EVENTS": {"HANDLERS": HANDLERS, **events},
    }
    with override_settings(MICROKIT=microkit):
        return sorted(
            m.id or ""
            for m in run_checks()
            if (m.id or "").startswith(("django_microkit.E09", "django_microkit.W09"))
        )


def test_a_correct_handler_table_passes() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("handlers", "expected"),
    [
        ({"Orders.Placed": "x.y"}, "django_microkit.E090"),
        ({"orders.widget.created.v1": "tests.nowhere.Handler"}, "django_microkit.E091"),
        (
            {"orders.widget.created.v1": "tests.testapp.event_handlers.NotAHandler"},
            "django_microkit.E092",
        ),
        ({"orders.widget.created.v1": 42}, "django_microkit.E092"),
        (
            {"orders.widget.created.v1": "tests.testapp.event_handlers.BadSerializer"},
            "django_microkit.E093",
        ),
        (
            {"billing.invoice.paid.v1": "tests.testapp.event_handlers.widget_resized"},
            "django_microkit.E094",
        ),
    ],
)
def test_a_bad_handler_entry_is_reported(handlers: Any, expected: str) -> None:
    assert ids(HANDLERS=handlers) == [expected]


@pytest.mark.parametrize(
    "setting",
    [
        {"MAX_ATTEMPTS": 0},
        {"PREFETCH": 0},
        {"HANDLER_BACKOFF": -1},
        {"HANDLER_BACKOFF_MAX": -0.5},
    ],
)
def test_worker_numbers_out_of_range_are_reported(setting: dict[str, Any]) -> None:
    assert ids(**setting) == ["django_microkit.E095"]


def test_a_negative_inbox_retention_is_reported() -> None:
    assert ids(INBOX_RETENTION=-1) == ["django_microkit.E095"]


def test_an_inbox_kept_shorter_than_the_outbox_is_a_warning() -> None:
    assert ids(INBOX_RETENTION=60, OUTBOX_RETENTION=3600) == ["django_microkit.W090"]


def test_handlers_without_the_events_app_are_reported() -> None:
    apps = [app for app in _installed() if app != "django_microkit.events"]
    with override_settings(INSTALLED_APPS=apps):
        assert "django_microkit.E096" in ids()


def test_a_handlers_value_of_the_wrong_type_is_left_to_e003() -> None:
    assert ids(HANDLERS=["orders.widget.created.v1"]) == []


def _installed() -> list[str]:
    from django.conf import settings

    return list(settings.INSTALLED_APPS)
