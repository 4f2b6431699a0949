"""Helpers for a service's own tests.

:class:`ServiceAPIClient` calls the service under test as another service would:
every request carries a freshly minted, really signed service token, verified by
the real :class:`~django_microkit.service_auth.ServiceTokenAuthentication`.

:func:`fake_service` stands in for a service the code under test calls through
:class:`~django_microkit.client.ServiceClient`, without the network.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json as jsonlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.test import override_settings
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from rest_framework.test import APIClient

from django_microkit.conf import microkit_settings
from django_microkit.errors.handler import reason_phrase
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

__all__ = [
    "FakeService",
    "RecordedCall",
    "ServiceAPIClient",
    "ServiceTokenSigner",
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
