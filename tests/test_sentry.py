from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.apps import apps
from django.test import Client, override_settings
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

import django_microkit
from django_microkit.sentry import before_send, init_sentry
from tests.conftest import LogLines, applied_logging_config
from tests.test_checks import messages

DSN = "https://public@sentry.example.invalid/1"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class CapturingTransport(Transport):
    """Keeps envelopes in memory instead of sending them anywhere."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [
            item.payload.json or {}
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "event"
        ]


def sentry_settings(**section: Any) -> dict[str, Any]:
    return {"SERVICE_NAME": "tests", "SERVICE_VERSION": "1.0.0", "SENTRY": section}


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def test_unhandled_error_reaches_sentry_once_with_the_ids(
    transport: CapturingTransport,
) -> None:
    with override_settings(
        MICROKIT=sentry_settings(DSN=DSN, ENVIRONMENT="staging", SAMPLE_RATE=1)
    ):
        assert init_sentry(transport=transport)
        # With the django.request error line also in the logs: still one event.
        with applied_logging_config(django_microkit.logging_config()) as log_lines:
            response = Client(raise_request_exception=False).get(
                "/request-id/fail",
                headers={"X-Request-ID": "rid-sentry", "traceparent": TRACEPARENT},
            )
    assert response.status_code == 500
    assert len(log_lines.of("django.request")) == 1
    (event,) = transport.events()
    assert event["tags"]["request_id"] == "rid-sentry"
    assert event["tags"]["trace_id"] == TRACE_ID
    assert event["tags"]["service"] == "tests"
    assert event["environment"] == "staging"
    assert event["release"] == "1.0.0"
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "boom in view")


def test_events_outside_a_request_carry_the_service_only(
    transport: CapturingTransport,
) -> None:
    with override_settings(MICROKIT=sentry_settings(DSN=DSN, RELEASE="orders@2")):
        init_sentry(transport=transport)
        sentry_sdk.capture_message("nightly job failed")
    (event,) = transport.events()
    assert event["tags"] == {"service": "tests"}
    assert event["release"] == "orders@2"


def test_a_hook_of_the_service_runs_after_the_tags(
    transport: CapturingTransport,
) -> None:
    seen: list[dict[str, Any]] = []

    def own_hook(event: Any, hint: Any) -> Any:
        seen.append(dict(event["tags"]))
        return None if event.get("message") == "drop me" else event

    with override_settings(MICROKIT=sentry_settings(DSN=DSN)):
        init_sentry(transport=transport, before_send=own_hook)
        sentry_sdk.capture_message("keep me")
        sentry_sdk.capture_message("drop me")
    assert seen == [{"service": "tests"}, {"service": "tests"}]
    assert [event["message"] for event in transport.events()] == ["keep me"]


def test_without_dsn_sentry_stays_off() -> None:
    with override_settings(MICROKIT=sentry_settings()):
        assert init_sentry() is False
    assert not sentry_sdk.get_client().is_active()


def test_an_empty_dsn_given_keeps_sentry_off() -> None:
    with override_settings(MICROKIT=sentry_settings(DSN=DSN)):
        assert init_sentry(dsn="") is False
    assert not sentry_sdk.get_client().is_active()


def test_before_send_keeps_tags_already_set() -> None:
    event: Any = {"tags": {"service": "set-by-caller"}}
    assert before_send(event, {})["tags"] == {"service": "set-by-caller"}
    event = {"tags": None}
    with override_settings(MICROKIT={}):
        assert before_send(event, {})["tags"] == {}


def test_sentry_starts_with_django_when_a_dsn_is_set(
    transport: CapturingTransport,
) -> None:
    with override_settings(MICROKIT=sentry_settings(DSN=DSN)):
        apps.get_app_config("django_microkit").ready()
        client = sentry_sdk.get_client()
        assert client.is_active()
        assert client.dsn == DSN


def test_an_invalid_dsn_keeps_sentry_off_and_says_so(log_lines: LogLines) -> None:
    with override_settings(MICROKIT=sentry_settings(DSN="ftp://nope")):
        apps.get_app_config("django_microkit").ready()
    assert not sentry_sdk.get_client().is_active()
    (line,) = log_lines.of("django_microkit.sentry")
    assert line["level"] == "error"
    assert "invalid" in line["event"]


def test_init_sentry_with_an_invalid_dsn_in_the_settings(log_lines: LogLines) -> None:
    with override_settings(MICROKIT=sentry_settings(DSN="ftp://nope")):
        assert init_sentry() is False
    assert not sentry_sdk.get_client().is_active()
    (line,) = log_lines.of("django_microkit.sentry")
    assert "invalid" in line["event"]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"DSN": DSN, "SAMPLE_RATE": 0.5, "TRACES_SAMPLE_RATE": 0}, []),
        ({"DSN": "not a dsn"}, ["django_microkit.E027"]),
        ({"DSN": "https://sentry.example.invalid/1"}, ["django_microkit.E027"]),
        ({"SAMPLE_RATE": 1.5}, ["django_microkit.E026"]),
        ({"TRACES_SAMPLE_RATE": -0.1}, ["django_microkit.E026"]),
        ({"DSN": 5}, ["django_microkit.E003"]),
    ],
)
def test_sentry_checks(section: dict[str, Any], expected: list[str]) -> None:
    assert sorted(messages(MICROKIT=sentry_settings(**section))) == expected
