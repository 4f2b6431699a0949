"""Helpers for a service's own tests.

:class:`ServiceAPIClient` calls the service under test as another service would:
every request carries a freshly minted, really signed service token, verified by
the real :class:`~django_microkit.service_auth.ServiceTokenAuthentication`.

:func:`fake_service` stands in for a service the code under test calls through
:class:`~django_microkit.client.ServiceClient`, without the network.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import io
import json as jsonlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.test import override_settings
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from rest_framework.test import APIClient

from django_microkit.conf import EventsSettings, microkit_settings
from django_microkit.errors.handler import reason_phrase
from django_microkit.events.envelope import Event
from django_microkit.events.transport import (
    Delivery,
    OutgoingEvent,
    Transport,
    TransportError,
    get_transport,
)
from django_microkit.service_auth.keys import (
    SUPPORTED_ALGORITHMS,
    Key,
    generate_key,
    load_key,
)
from django_microkit.service_auth.tokens import (
    encode_token,
    token_claims,
    validate_scopes,
)

if TYPE_CHECKING:
    from django_microkit.events.consumer import Consumer, Outcome

__all__ = [
    "EventCapture",
    "FakeService",
    "InMemoryTransport",
    "RecordedCall",
    "ServiceAPIClient",
    "ServiceTokenSigner",
    "capture_events",
    "fake_service",
    "trust_test_service",
]

# Fast to generate and to sign with, in this order of preference.
_TEST_ALGORITHMS = ("EdDSA", "HS256", "HS384", "HS512", "ES256", "PS256", "RS256")
_lock = threading.Lock()
_test_keys: dict[str, tuple[str, str | None]] = {}


def _test_key(alg: str) -> tuple[str, str | None]:
    """Key material for ``alg``, generated once per test process."""
    with _lock:
        if alg not in _test_keys:
            # The smallest RSA key the checks accept: quick to generate.
            _test_keys[alg] = generate_key(alg, rsa_bits=2048)
        return _test_keys[alg]


def _test_algorithm() -> str:
    allowed = set(microkit_settings.SERVICE_AUTH["ALGORITHMS"])
    for alg in _TEST_ALGORITHMS:
        if alg in allowed:
            return alg
    raise ValueError(
        "MICROKIT['SERVICE_AUTH']['ALGORITHMS'] allows none of: "
        + ", ".join(SUPPORTED_ALGORITHMS)
    )


@contextlib.contextmanager
def trust_test_service(service: str) -> Iterator[ServiceTokenSigner]:
    """Make the service under test trust a test key of ``service``.

    Inside the block, ``service`` is a known peer whose keys include a test key
    (generated once per process), and the yielded signer mints tokens with it::

        with trust_test_service("orders") as orders:
            token = orders.token(scopes=["catalog:write"])
            response = client.post(url, data, HTTP_AUTHORIZATION=f"Bearer {token}")
    """
    alg = _test_algorithm()
    private, public = _test_key(alg)
    kid = f"microkit-test-{service}"
    current = copy.deepcopy(dict(microkit_settings.user_settings()))
    section = dict(current.get("SERVICE_AUTH") or {})
    peers = dict(section.get("PEERS") or {})
    peer_keys = [
        entry
        for entry in peers.get(service) or []
        if not (isinstance(entry, dict) and entry.get("kid") == kid)
    ]
    peer_keys.append({"kid": kid, "alg": alg, "key": {"value": public or private}})
    peers[service] = peer_keys
    section["PEERS"] = peers
    current["SERVICE_AUTH"] = section
    with override_settings(MICROKIT=current):
        yield ServiceTokenSigner(load_key(kid, alg, private, service=service))


class ServiceTokenSigner:
    """Mints tokens as a service with its test key (see :func:`trust_test_service`)."""

    def __init__(self, key: Key) -> None:
        self.service = key.service
        self._key = key

    def token(
        self,
        scopes: Iterable[str] = (),
        *,
        audience: str | None = None,
        lifetime: int = 60,
        **claims: Any,
    ) -> str:
        """A token from ``service`` for ``audience`` (default: the service under
        test); ``claims`` are added to, or replace, the standard ones."""
        standard = token_claims(
            self.service,
            audience if audience is not None else microkit_settings.SERVICE_NAME,
            validate_scopes(scopes),
            lifetime,
            int(time.time()),
        )
        return encode_token(self._key, {**standard, **claims})


class ServiceAPIClient(APIClient):
    """An ``APIClient`` that calls as the service ``service`` with ``scopes``.

    Every request gets a new token (so replay protection never trips), signed
    with a test key that the service under test trusts for that request only::

        client = ServiceAPIClient("orders", scopes=["catalog:write"])
        response = client.post("/products/", {"sku": "A-1"}, format="json")

    Credentials set with ``client.credentials(HTTP_AUTHORIZATION=...)`` take
    precedence over the minted token.
    """

    def __init__(
        self,
        service: str,
        scopes: Iterable[str] = (),
        *,
        audience: str | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(**defaults)
        self.service = service
        self.scopes = validate_scopes(scopes)
        self.audience = audience

    def request(self, **kwargs: Any) -> Any:
        with trust_test_service(self.service) as signer:
            token = signer.token(self.scopes, audience=self.audience)
            kwargs.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
            return super().request(**kwargs)


# --------------------------------------------------------------------------
# Service client: a fake of another service, without the network
# --------------------------------------------------------------------------

_UNSET: Any = object()


@dataclass(frozen=True)
class RecordedCall:
    """A request a :class:`FakeService` received."""

    method: str
    #: Path relative to the service's BASE_URL, as routes are registered.
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict[str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    raises: BaseException | None


class FakeService(BaseAdapter):
    """Stands in for a service: answers registered routes, records every call.

    It is a ``requests`` transport adapter mounted on the service's session, so
    everything above the network runs for real: headers, retries, the circuit
    breaker, error mapping, pagination.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        #: Every request received, in order.
        self.calls: list[RecordedCall] = []
        self._routes: dict[tuple[str, str], list[_Reply]] = {}
        # Routes whose last answer has been given (and is now repeated).
        self._repeating: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = _UNSET,
        text: str | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        raises: BaseException | None = None,
    ) -> None:
        """Answer ``method path`` (relative to BASE_URL, no query) with ``json``,
        ``text``, a ``problem`` document (its ``status``, ``title`` and ``type``
        filled in), or by raising ``raises`` (``requests.ConnectionError()``,
        ``requests.ReadTimeout()``…) as the network would.

        Adding the same route again queues another answer: they are given in
        order, and the last one is repeated until another is added.
        """
        reply_headers = dict(headers or {})
        body = b""
        if problem is not None:
            document = {"type": "about:blank", "status": status, **problem}
            if document["type"] == "about:blank" or "title" not in document:
                # Titled as the handler titles: RFC 9457 §4.2.1.
                document["title"] = reason_phrase(status)
            body = jsonlib.dumps(document).encode()
            reply_headers.setdefault("Content-Type", "application/problem+json")
        elif json is not _UNSET:
            body = jsonlib.dumps(json).encode()
            reply_headers.setdefault("Content-Type", "application/json")
        elif text is not None:
            body = text.encode()
            reply_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        key = (method.upper(), path)
        with self._lock:
            replies = self._routes.setdefault(key, [])
            if key in self._repeating:  # its last answer was given: replace it
                self._repeating.discard(key)
                replies.clear()
            replies.append(_Reply(status, body, reply_headers, raises))

    def get(self, path: str, **kwargs: Any) -> None:
        """``add("GET", path, ...)``."""
        self.add("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> None:
        """``add("POST", path, ...)``."""
        self.add("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> None:
        """``add("PUT", path, ...)``."""
        self.add("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> None:
        """``add("PATCH", path, ...)``."""
        self.add("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> None:
        """``add("DELETE", path, ...)``."""
        self.add("DELETE", path, **kwargs)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        from django_microkit.client import ServiceClient

        url = urlsplit(request.url or "")
        base_path = urlsplit(ServiceClient(self.name).config.base_url).path
        path = url.path[len(base_path) :] or "/"
        method = request.method or "GET"
        body = request.body or b""
        call = RecordedCall(
            method=method,
            path=path,
            query=parse_qs(url.query),
            headers=CaseInsensitiveDict(request.headers),
            body=body.encode() if isinstance(body, str) else body,
        )
        with self._lock:
            self.calls.append(call)
            replies = self._routes.get((method, path))
            if not replies:
                known = ", ".join(f"{m} {p}" for m, p in self._routes) or "none"
                raise AssertionError(
                    f"Fake service {self.name!r} has no answer for {method} {path} "
                    f"(routes: {known})."
                )
            if len(replies) > 1:
                reply = replies.pop(0)
            else:
                reply = replies[0]
                self._repeating.add((method, path))
        if reply.raises is not None:
            raise reply.raises
        response = requests.Response()
        response.status_code = reply.status
        response.reason = HTTPStatus(reply.status).phrase
        response.headers = CaseInsensitiveDict(reply.headers)
        response.raw = io.BytesIO(reply.body)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release."""


@contextlib.contextmanager
def fake_service(name: str) -> Iterator[FakeService]:
    """Route every call to service ``name`` to a :class:`FakeService`.

    ::

        with fake_service("catalog") as catalog:
            catalog.get("/api/products/7/", json={"id": 7, "price": "9.50"})
            response = api_client.post("/api/orders/", {...}, format="json")
        assert catalog.calls[0].headers["X-Request-ID"] == response["X-Request-ID"]

    The service must be in ``MICROKIT["SERVICES"]``; its circuit breaker starts
    closed on entry and is forgotten on exit, so tests do not leak state.
    """
    from django_microkit.client import set_transport

    fake = FakeService(name)
    set_transport(name, fake)
    try:
        yield fake
    finally:
        set_transport(name, None)


# --------------------------------------------------------------------------
# Events: an in-memory broker
# --------------------------------------------------------------------------


class _Broker:
    """The state of one in-memory broker, shared by every
    :class:`InMemoryTransport` made while it is active (settings changes make
    new transports; they must see the same events)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEvent] = []
        self.pending: collections.deque[bytes] = collections.deque()
        #: Pending bodies given back once: delivered again, as redelivered.
        self.requeued: set[bytes] = set()
        self.outcomes: list[Outcome | None] = []
        self.deliver = False
        self.down = False
        self.until_idle = False
        self.lock = threading.Lock()


_brokers: list[_Broker] = []


class _InMemoryDelivery(Delivery):
    def __init__(self, broker: _Broker, body: bytes) -> None:
        self.broker = broker
        self.body = body
        self.redelivered = body in broker.requeued

    def ack(self) -> None:
        """Nothing to do: the message left :attr:`_Broker.pending` when taken."""

    def requeue(self) -> None:
        with self.broker.lock:
            self.broker.requeued.add(self.body)
            self.broker.pending.appendleft(self.body)


class InMemoryTransport(Transport):
    """A broker in this process's memory, for tests (see :func:`capture_events`,
    whose broker every instance made in its block shares).

    :meth:`publish` records each event in :attr:`sent` and, when
    :attr:`deliver` is true, hands it at once to this service's own handlers
    through the real :class:`~django_microkit.events.consumer.Consumer` (the
    service's own signing key is trusted for that); an event of a type this
    service handles is otherwise queued in :attr:`pending`, which
    :meth:`consume` serves. :attr:`down` makes every call fail as a broker that
    cannot be reached.
    """

    def __init__(self, service: str, settings: EventsSettings) -> None:
        super().__init__(service, settings)
        self.broker = _brokers[-1] if _brokers else _Broker()

    @property
    def sent(self) -> list[OutgoingEvent]:
        """Every event published, in order."""
        return self.broker.sent

    @property
    def pending(self) -> collections.deque[bytes]:
        """Bodies waiting for :meth:`consume`."""
        return self.broker.pending

    @property
    def down(self) -> bool:
        return self.broker.down

    @down.setter
    def down(self, value: bool) -> None:
        self.broker.down = value

    def _fail_when_down(self) -> None:
        if self.broker.down:
            raise TransportError("The in-memory broker is down (test).")

    def publish(self, event: OutgoingEvent) -> None:
        self._fail_when_down()
        broker = self.broker
        with broker.lock:
            broker.sent.append(event)
        if broker.deliver:
            outcome = self.consumer(trust_self=True).receive(event.body)
            broker.outcomes.append(outcome)
        elif _handled_here(event.type):
            with broker.lock:
                broker.pending.append(event.body.encode())

    def consume(
        self,
        queue: str,
        bindings: Mapping[str, Sequence[str]],
        on_message: Callable[[Delivery], None],
        *,
        should_stop: Callable[[], bool],
    ) -> None:
        broker = self.broker
        while not should_stop():
            self._fail_when_down()
            with broker.lock:
                body = broker.pending.popleft() if broker.pending else None
            if body is not None:
                on_message(_InMemoryDelivery(broker, body))
            elif broker.until_idle:
                return
            else:
                time.sleep(0.01)

    def check(self) -> None:
        self._fail_when_down()

    def close(self) -> None:
        """Nothing to release."""

    def consumer(self, *, trust_self: bool) -> Consumer:
        """The real consumer of this service; with ``trust_self``, one that also
        accepts the service's own events (signed with its own key)."""
        from django_microkit.events.consumer import Consumer
        from django_microkit.service_auth.keys import get_config

        config = get_config()
        key = config.signing_key
        if trust_self and key is not None:
            material = key.material
            if hasattr(material, "public_key"):
                material = material.public_key()
            config = dataclasses.replace(
                config,
                peers=config.peers | {self.service},
                peer_keys={
                    **config.peer_keys,
                    key.kid: Key(key.kid, key.alg, self.service, material),
                },
            )
        return Consumer(service_auth=config)


def _handled_here(event_type: str) -> bool:
    from django_microkit.events.handlers import get_handlers

    return get_handlers().get(event_type) is not None


class EventCapture:
    """What :func:`capture_events` yields: the events published in its block,
    and ways to feed this service events as its producers would."""

    def __init__(self, broker: _Broker) -> None:
        self._broker = broker

    @property
    def transport(self) -> InMemoryTransport:
        """A transport on this capture's broker (``transport.down = True``
        makes the broker unreachable)."""
        transport = get_transport()
        if isinstance(transport, InMemoryTransport):
            return transport
        # Settings overridden inside the block name another transport.
        return InMemoryTransport(
            microkit_settings.SERVICE_NAME, microkit_settings.EVENTS
        )

    @property
    def published(self) -> list[Event]:
        """Every event that reached the broker, in order (read, not verified)."""
        return [_read_event(sent.body) for sent in self._broker.sent]

    @property
    def types(self) -> list[str]:
        """The types of :attr:`published`, in order."""
        return [sent.type for sent in self._broker.sent]

    def of_type(self, event_type: str) -> list[Event]:
        """The published events of ``event_type``."""
        return [event for event in self.published if event.type == event_type]

    @property
    def outcomes(self) -> list[Outcome | None]:
        """With ``deliver=True``: the outcome of each delivery, in order."""
        return self._broker.outcomes

    def receive(
        self,
        event_type: str,
        data: Any,
        *,
        key: str,
        source: str | None = None,
        event_id: str | None = None,
    ) -> Outcome | None:
        """Deliver to this service, now, an event of ``source`` (the type's
        first part by default) signed with a test key it trusts for the
        delivery: it goes through the real consumer (inbox, handler, retries,
        dead letters). Returns the outcome."""
        from django_microkit.events.envelope import encode_event, new_event

        source = source or event_type.split(".", 1)[0]
        with trust_test_service(source) as signer:
            event = new_event(source, event_type, data, key)
            if event_id is not None:
                event = dataclasses.replace(event, id=event_id)
            return self.deliver(encode_event(event, signer._key))

    def deliver(self, body: bytes | str) -> Outcome | None:
        """Deliver the message ``body`` as it is (a test's poison, or one signed
        by the test itself), through the real consumer; returns the outcome."""
        return self.transport.consumer(trust_self=False).receive(body)

    def run_worker(self) -> None:
        """Run a :class:`~django_microkit.events.consumer.Worker` on the queued
        events (:attr:`InMemoryTransport.pending`) until none is left."""
        from django_microkit.events.consumer import Worker

        self._broker.until_idle = True
        try:
            Worker(transport=self.transport).run()
        finally:
            self._broker.until_idle = False


def _read_event(body: str) -> Event:
    attributes = jsonlib.loads(body)
    return Event(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        subject=attributes["subject"],
        time=datetime.fromisoformat(attributes["time"].replace("Z", "+00:00")),
        data=attributes["data"],
        datacontenttype=attributes.get("datacontenttype", "application/json"),
        traceparent=attributes.get("traceparent"),
        tracestate=attributes.get("tracestate"),
        requestid=attributes.get("requestid"),
    )


@contextlib.contextmanager
def capture_events(*, deliver: bool = False) -> Iterator[EventCapture]:
    """Route this service's events through an in-memory broker.

    ::

        with capture_events() as events:
            response = client.post("/api/orders/", {...}, format="json")
        assert events.types == ["orders.order.placed.v1"]

    With ``deliver=True`` each published event of a type this service handles
    is handled at once, in the publishing thread, by the real consumer.
    ``events.receive(type, data, key=...)`` feeds the service an event of
    another service. Events are published when their transaction commits: in
    a test inside a transaction (pytest-django's default), wrap the request in
    ``django_capture_on_commit_callbacks(execute=True)``.
    """
    current = copy.deepcopy(dict(microkit_settings.user_settings()))
    section = dict(current.get("EVENTS") or {})
    section["TRANSPORT_CLASS"] = f"{__name__}.InMemoryTransport"
    current["EVENTS"] = section
    broker = _Broker()
    broker.deliver = deliver
    _brokers.append(broker)
    try:
        with override_settings(MICROKIT=current):
            yield EventCapture(broker)
    finally:
        _brokers.remove(broker)
