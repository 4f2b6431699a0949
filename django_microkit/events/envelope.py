"""The envelope of an event: CloudEvents 1.0 in structured JSON, signed.

An event on the wire is one JSON object with the CloudEvents attributes
(``specversion``, ``id``, ``source``, ``type``, ``subject``, ``time``,
``datacontenttype``, ``data``), the distributed-tracing extension
(``traceparent``, ``tracestate``), the publishing request's ``requestid``, and
``signature``: a JWS with a detached payload (RFC 7515, appendix F; ``b64``
false, RFC 7797) over the canonical JSON of every other attribute, made with
the producer's service-auth signing key. A consumer checks that signature with
the keys it lists for the service named in ``source``, so it knows who produced
the event, not only that somebody could write to the broker.

PyJWT makes and checks the JWS; this module decides what is signed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jwt

from django_microkit.request_id import (
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    TraceContext,
    is_valid_request_id,
    parse_traceparent,
    parse_tracestate,
)
from django_microkit.service_auth.keys import Key, ServiceAuthConfig
from django_microkit.tracing import REQUEST_ID_KEY, message_headers

__all__ = [
    "EVENT_TYPE_PATTERN",
    "SIGNATURE_TYPE",
    "Event",
    "EventRejected",
    "canonical_json",
    "decode_event",
    "encode_event",
    "new_event",
    "validate_event_type",
]

#: ``<service>.<entity>.<happened>.v<N>``: lowercase words, a version last.
EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*")

#: The ``typ`` of the signature's protected header.
SIGNATURE_TYPE = "microkit-event+jws"

_SPEC_VERSION = "1.0"
_CONTENT_TYPE = "application/json"
_SIGNATURE = "signature"
_REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "data")
_MAX_ATTRIBUTE = 255
_MAX_SIGNATURE = 4096


class EventRejected(Exception):
    """A message that is not an event this service can accept.

    ``reason`` is one of :class:`~django_microkit.events.models.DeadLetter`'s
    reasons (``not_json``, ``invalid_envelope``, ``unknown_producer``,
    ``bad_signature``, ``too_large`` …); ``detail`` says what is wrong in words
    that are safe to log (never the key, never the whole message).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """One event, as published or as received and verified.

    ``subject`` is the ordering key: events of one subject are delivered in the
    order they were published. ``traceparent``, ``tracestate`` and
    ``requestid`` are those of the request that published it.
    """

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: Any = field(compare=False)
    datacontenttype: str = _CONTENT_TYPE
    traceparent: str | None = None
    tracestate: str | None = None
    requestid: str | None = None

    @property
    def trace_context(self) -> TraceContext | None:
        """The publisher's trace, to continue while handling the event."""
        if self.traceparent is None:
            return None
        trace = parse_traceparent(self.traceparent)
        if trace is not None and self.tracestate:
            trace = trace._replace(tracestate=parse_tracestate(self.tracestate))
        return trace

    def attributes(self) -> dict[str, Any]:
        """The structured-mode JSON object of this event, unsigned."""
        attributes: dict[str, Any] = {
            "specversion": _SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": _format_time(self.time),
            "datacontenttype": self.datacontenttype,
            "data": self.data,
        }
        for name in ("traceparent", "tracestate", "requestid"):
            value = getattr(self, name)
            if value is not None:
                attributes[name] = value
        return attributes


def validate_event_type(event_type: str, producer: str | None = None) -> None:
    """Raise ``ValueError`` unless ``event_type`` is ``<service>.<…>.v<N>`` and,
    when ``producer`` is given, its first part is that service's name."""
    if not isinstance(event_type, str) or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise ValueError(
            f"Event type {event_type!r} is not <service>.<entity>.<happened>.v<N> "
            "in lowercase, e.g. 'orders.order.placed.v1'."
        )
    if len(event_type) > _MAX_ATTRIBUTE:
        raise ValueError(f"Event type is longer than {_MAX_ATTRIBUTE} characters.")
    if producer is not None and event_type.split(".", 1)[0] != producer:
        raise ValueError(
            f"Event type {event_type!r} must start with this service's name, "
            f"{producer!r}."
        )


def new_event(source: str, event_type: str, data: Any, key: str) -> Event:
    """A new event of ``source``, continuing the current request's trace.

    Inside a request the event carries its request ID and a child
    ``traceparent`` (and the kept ``tracestate``); outside one it starts a new
    trace. ``data`` must be JSON (it is serialised now, so a value that is not
    fails here, in the publisher's transaction, rather than in the relay).
    """
    validate_event_type(event_type, source)
    if not isinstance(key, str) or not key or len(key) > _MAX_ATTRIBUTE:
        raise ValueError(
            f"An event's key must be a non-empty string of at most {_MAX_ATTRIBUTE} "
            "characters."
        )
    json.dumps(data, allow_nan=False)
    # As an outgoing call would: a child of the current span (the producer's
    # span with tracing on, else the request's caller), or a new trace.
    headers = message_headers()
    return Event(
        id=str(uuid.uuid4()),
        source=source,
        type=event_type,
        subject=key,
        time=datetime.now(tz=timezone.utc),
        data=data,
        traceparent=headers[TRACEPARENT_HEADER],
        tracestate=headers.get(TRACESTATE_HEADER),
        requestid=headers.get(REQUEST_ID_KEY),
    )


def canonical_json(attributes: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: keys sorted, no whitespace, UTF-8 (the
    form of RFC 8785 for the JSON values events carry)."""
    return json.dumps(
        attributes,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def encode_event(event: Event, key: Key) -> str:
    """The signed JSON text of ``event``, ready to store and send."""
    attributes = event.attributes()
    signature = jwt.api_jws.PyJWS().encode(
        canonical_json(attributes),
        key.material,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": SIGNATURE_TYPE, "b64": False},
        is_payload_detached=True,
    )
    attributes[_SIGNATURE] = signature
    return json.dumps(attributes, ensure_ascii=False, allow_nan=False)


def decode_event(body: bytes | str, config: ServiceAuthConfig, max_size: int) -> Event:
    """The verified event in ``body``, or :class:`EventRejected` saying why not.

    Checks, in order: size, JSON, the envelope's shape, that ``source`` is a
    peer of this service, and the signature with that peer's key named by the
    signature's ``kid`` (so an unknown producer learns nothing of the keys).
    """
    if len(body) > max_size:
        raise EventRejected("too_large", f"The message is over {max_size} bytes.")
    try:
        # NaN and Infinity are not JSON (RFC 8259), and nesting deep enough to
        # exhaust the parser's recursion is refused like any other non-JSON.
        attributes = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EventRejected("not_json", "The message is not JSON.") from None
    if not isinstance(attributes, dict):
        raise EventRejected("invalid_envelope", "The message is not a JSON object.")
    signature = attributes.pop(_SIGNATURE, None)
    event = _event_from(attributes)
    if event.source not in config.peers:
        raise EventRejected(
            "unknown_producer",
            f"Events from {event.source!r} are not accepted: it is not a peer.",
        )
    if (
        not isinstance(signature, str)
        or not signature
        or len(signature) > _MAX_SIGNATURE
    ):
        raise EventRejected("bad_signature", "The event is not signed.")
    _verify(signature, canonical_json(attributes), event.source, config)
    return event


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _verify(
    signature: str, payload: bytes, source: str, config: ServiceAuthConfig
) -> None:
    try:
        header = jwt.get_unverified_header(signature)
    except jwt.InvalidTokenError:
        raise EventRejected("bad_signature", "The signature is malformed.") from None
    kid = header.get("kid")
    key = config.peer_keys.get(kid) if isinstance(kid, str) else None
    if key is None or key.service != source:
        raise EventRejected(
            "bad_signature", f"The signature's key is not one of {source!r}'s keys."
        )
    if header.get("typ") != SIGNATURE_TYPE:
        raise EventRejected("bad_signature", "The signature is not an event's.")
    try:
        jwt.api_jws.PyJWS().decode_complete(
            signature, key.material, algorithms=[key.alg], detached_payload=payload
        )
    except jwt.InvalidTokenError:
        raise EventRejected("bad_signature", "The signature does not match.") from None


def _event_from(attributes: Mapping[str, Any]) -> Event:
    missing = [name for name in _REQUIRED if name not in attributes]
    if missing:
        raise EventRejected(
            "invalid_envelope", f"The event has no {', '.join(missing)}."
        )
    if attributes["specversion"] != _SPEC_VERSION:
        raise EventRejected("invalid_envelope", "The event is not CloudEvents 1.0.")
    values: dict[str, str] = {}
    for name in ("id", "source", "type", "subject"):
        value = attributes[name]
        if not isinstance(value, str) or not value or len(value) > _MAX_ATTRIBUTE:
            raise EventRejected(
                "invalid_envelope", f"The event's {name} is not a short string."
            )
        values[name] = value
    if not EVENT_TYPE_PATTERN.fullmatch(values["type"]):
        raise EventRejected("invalid_envelope", "The event's type is malformed.")
    content_type = attributes.get("datacontenttype", _CONTENT_TYPE)
    if content_type != _CONTENT_TYPE:
        raise EventRejected("invalid_envelope", "The event's data is not JSON.")
    return Event(
        time=_parse_time(attributes["time"]),
        data=attributes["data"],
        traceparent=_optional(attributes, "traceparent", parse_traceparent),
        tracestate=_optional(attributes, "tracestate", parse_tracestate),
        requestid=_optional(
            attributes, "requestid", lambda v: v if is_valid_request_id(v) else None
        ),
        **values,
    )


def _optional(attributes: Mapping[str, Any], name: str, valid: Any) -> str | None:
    """An optional extension attribute, or ``None`` when absent or invalid (an
    invalid trace context starts a new trace rather than refusing the event)."""
    value = attributes.get(name)
    if isinstance(value, str) and len(value) <= 512 and valid(value) is not None:
        return value
    return None


def _format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    raise EventRejected("invalid_envelope", "The event's time is not RFC 3339.")
