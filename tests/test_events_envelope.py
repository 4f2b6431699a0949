"""The signed CloudEvents envelope: what is signed, what a consumer refuses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from django.test import override_settings

from django_microkit.events.envelope import (
    EVENT_TYPE_PATTERN,
    SIGNATURE_TYPE,
    Event,
    EventRejected,
    canonical_json,
    decode_event,
    encode_event,
    new_event,
    validate_event_type,
)
from django_microkit.request_id import TraceContext, continued_context
from django_microkit.service_auth.keys import ServiceAuthConfig, get_config
from tests.service_auth_keys import (
    BILLING,
    EVIL,
    INVENTORY,
    ORDERS_NEW,
    ORDERS_OLD,
    auth_settings,
)

MAX = 256 * 1024


@pytest.fixture
def config() -> Any:
    """The service "tests", which trusts orders, billing, inventory, itself."""
    with override_settings(MICROKIT=auth_settings()):
        yield get_config()


def event(source: str = "orders", **changes: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "5c6f1f5e-6a43-4a4e-9bd8-2d6f7c9b3b1a",
        "source": source,
        "type": f"{source}.order.placed.v1",
        "subject": "42",
        "time": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
        "data": {"id": 42, "items": [{"sku": "A-1", "quantity": 2}], "note": "é"},
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=value",
        "requestid": "req-1",
    }
    fields.update(changes)
    return Event(**fields)


def attributes(body: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(body)
    return value


def rejected(body: str | bytes, config: ServiceAuthConfig, max_size: int = MAX) -> str:
    with pytest.raises(EventRejected) as caught:
        decode_event(body, config, max_size)
    assert str(caught.value) == f"{caught.value.reason}: {caught.value.detail}"
    return caught.value.reason


@pytest.mark.parametrize("key", [ORDERS_OLD, ORDERS_NEW, BILLING, INVENTORY])
def test_a_signed_event_decodes_to_itself(key: Any, config: ServiceAuthConfig) -> None:
    original = event(key.service)
    decoded = decode_event(encode_event(original, key), config, MAX)
    assert decoded == original
    assert decoded.data == original.data
    assert decoded.trace_context is not None
    assert decoded.trace_context.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert decoded.trace_context.tracestate == "vendor=value"


def test_the_envelope_is_structured_cloudevents() -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    assert body["specversion"] == "1.0"
    assert body["time"] == "2026-01-02T03:04:05.678000Z"
    assert body["datacontenttype"] == "application/json"
    assert body["subject"] == "42"
    header = jwt.get_unverified_header(body["signature"])
    assert header == {
        "alg": "EdDSA",
        "kid": "orders-2",
        "typ": SIGNATURE_TYPE,
        "b64": False,
        "crit": ["b64"],
    }
    # Detached: the JWS carries no payload between its dots.
    assert body["signature"].split(".")[1] == ""


def test_the_signature_covers_the_canonical_json_of_the_other_attributes() -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    signature = body.pop("signature")
    payload = canonical_json(body)
    assert (
        payload
        == json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    jwt.api_jws.PyJWS().decode_complete(
        signature,
        ORDERS_NEW.material.public_key(),
        algorithms=["EdDSA"],
        detached_payload=payload,
    )


def test_optional_extensions_are_left_out_when_absent(
    config: ServiceAuthConfig,
) -> None:
    plain = event(traceparent=None, tracestate=None, requestid=None)
    body = attributes(encode_event(plain, ORDERS_NEW))
    assert not {"traceparent", "tracestate", "requestid"} & set(body)
    decoded = decode_event(json.dumps(body), config, MAX)
    assert decoded.trace_context is None
    assert decoded.requestid is None


def test_invalid_extensions_are_dropped_not_refused(config: ServiceAuthConfig) -> None:
    odd = event(traceparent="00-zz", tracestate="=bad=", requestid="bad id!")
    decoded = decode_event(encode_event(odd, ORDERS_NEW), config, MAX)
    assert (decoded.traceparent, decoded.tracestate, decoded.requestid) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"data": {"id": 43}},
        {"subject": "43"},
        {"type": "orders.order.cancelled.v1"},
        {"time": "2026-01-02T03:04:06Z"},
        {"requestid": "req-2"},
        {"extra": 1},
    ],
)
def test_tampering_with_any_attribute_breaks_the_signature(
    change: dict[str, Any], config: ServiceAuthConfig
) -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    body.update(change)
    assert rejected(json.dumps(body), config) == "bad_signature"


def test_key_rotation_old_and_new_keys_both_verify(config: ServiceAuthConfig) -> None:
    for key in (ORDERS_OLD, ORDERS_NEW):
        assert decode_event(encode_event(event(), key), config, MAX).source == "orders"
    # Once the old key is dropped from PEERS, its events are refused.
    settings = auth_settings()
    settings["SERVICE_AUTH"]["PEERS"]["orders"] = settings["SERVICE_AUTH"]["PEERS"][
        "orders"
    ][1:]
    with override_settings(MICROKIT=settings):
        newer = get_config()
        assert rejected(encode_event(event(), ORDERS_OLD), newer) == "bad_signature"
        assert decode_event(encode_event(event(), ORDERS_NEW), newer, MAX)


def test_a_peer_cannot_sign_for_another(config: ServiceAuthConfig) -> None:
    # billing's valid key, on an event claiming to come from orders.
    assert rejected(encode_event(event("orders"), BILLING), config) == "bad_signature"


def test_a_signature_of_another_kind_is_refused(config: ServiceAuthConfig) -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    signature = body.pop("signature")
    body["signature"] = jwt.api_jws.PyJWS().encode(
        canonical_json(body),
        ORDERS_NEW.material,
        algorithm="EdDSA",
        headers={"kid": "orders-2", "typ": "svc+jwt", "b64": False},
        is_payload_detached=True,
    )
    assert body["signature"] != signature
    assert rejected(json.dumps(body), config) == "bad_signature"


@pytest.mark.parametrize(
    "signature", [None, "", 42, "x" * 5000, "not-a-jws", "a.b.c.d"]
)
def test_missing_or_malformed_signatures(
    signature: Any, config: ServiceAuthConfig
) -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    body["signature"] = signature
    if signature is None:
        del body["signature"]
    assert rejected(json.dumps(body), config) == "bad_signature"


def test_unknown_producers_are_refused_before_any_key_is_tried(
    config: ServiceAuthConfig,
) -> None:
    assert rejected(encode_event(event("evil"), EVIL), config) == "unknown_producer"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        ("{", "not_json"),
        # Nested past the parser's recursion limit, in a few kilobytes.
        ("[" * 100_000, "not_json"),
        ('{"specversion": "1.0", "data": NaN}', "not_json"),
        ('{"data": Infinity}', "not_json"),
        ("[1, 2]", "invalid_envelope"),
        ('"text"', "invalid_envelope"),
        ("{}", "invalid_envelope"),
    ],
)
def test_what_is_not_an_event(
    body: str | bytes, reason: str, config: ServiceAuthConfig
) -> None:
    assert rejected(body, config) == reason


@pytest.mark.parametrize(
    "change",
    [
        {"specversion": "0.3"},
        {"id": ""},
        {"id": 7},
        {"source": "x" * 256},
        {"type": "Orders.Placed"},
        {"type": "orders.order.placed"},
        {"datacontenttype": "text/plain"},
        {"time": "yesterday"},
        {"time": "2026-01-02T03:04:05"},
        {"time": 1767323045},
        {"time": "2" * 65},
    ],
)
def test_malformed_envelopes(change: dict[str, Any], config: ServiceAuthConfig) -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    body.update(change)
    assert rejected(json.dumps(body), config) == "invalid_envelope"


@pytest.mark.parametrize(
    "name", ["specversion", "id", "source", "type", "time", "data"]
)
def test_a_missing_attribute_is_named(name: str, config: ServiceAuthConfig) -> None:
    body = attributes(encode_event(event(), ORDERS_NEW))
    del body[name]
    with pytest.raises(EventRejected, match=f"has no {name}"):
        decode_event(json.dumps(body), config, MAX)


def test_oversized_messages_are_refused_unread(config: ServiceAuthConfig) -> None:
    body = encode_event(event(), ORDERS_NEW)
    assert rejected(body, config, max_size=len(body) - 1) == "too_large"
    assert decode_event(body, config, max_size=len(body))


@pytest.mark.parametrize(
    "event_type",
    ["orders.order.placed.v1", "orders.placed.v12", "order-history.entry.added.v1"],
)
def test_valid_event_types(event_type: str) -> None:
    assert EVENT_TYPE_PATTERN.fullmatch(event_type)
    validate_event_type(event_type, event_type.split(".")[0])


@pytest.mark.parametrize(
    ("event_type", "producer", "message"),
    [
        ("orders.order.placed", None, "<service>.<entity>"),
        ("orders.order.placed.v0", None, "<service>.<entity>"),
        ("Orders.order.placed.v1", None, "<service>.<entity>"),
        (42, None, "<service>.<entity>"),
        ("orders." + "a" * 250 + ".v1", None, "longer than 255"),
        ("billing.order.placed.v1", "orders", "must start with"),
    ],
)
def test_invalid_event_types(
    event_type: Any, producer: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_event_type(event_type, producer)


def test_new_event_continues_the_current_trace_and_request() -> None:
    trace = TraceContext.new()
    with continued_context("req-7", trace):
        made = new_event("orders", "orders.order.placed.v1", {"id": 1}, "1")
    assert made.requestid == "req-7"
    assert made.trace_context is not None
    assert made.trace_context.trace_id == trace.trace_id
    assert made.traceparent != trace.child_traceparent()
    uuid_like = made.id.split("-")
    assert [len(part) for part in uuid_like] == [8, 4, 4, 4, 12]


def test_new_event_outside_a_request_starts_a_trace() -> None:
    first = new_event("orders", "orders.order.placed.v1", {}, "1")
    second = new_event("orders", "orders.order.placed.v1", {}, "1")
    assert first.requestid is None
    assert first.trace_context is not None and second.trace_context is not None
    assert first.trace_context.trace_id != second.trace_context.trace_id
    assert first.id != second.id


@pytest.mark.parametrize("key", ["", "k" * 256, 42])
def test_new_event_needs_a_short_key(key: Any) -> None:
    with pytest.raises(ValueError, match="key"):
        new_event("orders", "orders.order.placed.v1", {}, key)


@pytest.mark.parametrize("data", [{"x": float("nan")}, {"x": object()}])
def test_new_event_needs_json_data(data: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        new_event("orders", "orders.order.placed.v1", data, "1")
