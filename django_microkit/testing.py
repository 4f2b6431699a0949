"""Helpers for a service's own tests.

:class:`ServiceAPIClient` calls the service under test as another service would:
every request carries a freshly minted, really signed service token, verified by
the real :class:`~django_microkit.service_auth.ServiceTokenAuthentication`.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.test import override_settings
from rest_framework.test import APIClient

from django_microkit.conf import microkit_settings
from django_microkit.service_auth._keys import (
    SUPPORTED_ALGORITHMS,
    Key,
    generate_key,
    load_key,
)
from django_microkit.service_auth._tokens import (
    encode_token,
    token_claims,
    validate_scopes,
)

__all__ = ["ServiceAPIClient", "ServiceTokenSigner", "trust_test_service"]

# Fast to generate and to sign with, in this order of preference.
_TEST_ALGORITHMS = ("EdDSA", "HS256", "HS384", "HS512", "ES256", "PS256", "RS256")
_lock = threading.Lock()
_test_keys: dict[str, tuple[str, str | None]] = {}


def _test_key(alg: str) -> tuple[str, str | None]:
    """Key material for ``alg``, generated once per test process."""
    with _lock:
        if alg not in _test_keys:
            _test_keys[alg] = generate_key(alg)
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
