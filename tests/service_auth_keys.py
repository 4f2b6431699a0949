"""Keys, settings and token builders shared by the service-auth tests."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import jwt
from rest_framework.response import Response

from django_microkit.service_auth.keys import Key, generate_key, load_key


def key_pair(alg: str) -> tuple[str, str]:
    """A private and a public PEM of a new asymmetric key."""
    private, public = generate_key(alg)
    assert public is not None, alg
    return private, public


TESTS_PRIVATE, TESTS_PUBLIC = key_pair("EdDSA")
ORDERS_OLD_PRIVATE, ORDERS_OLD_PUBLIC = key_pair("EdDSA")
ORDERS_NEW_PRIVATE, ORDERS_NEW_PUBLIC = key_pair("EdDSA")
EVIL_PRIVATE, _EVIL_PUBLIC = key_pair("EdDSA")
INVENTORY_SECRET = secrets.token_urlsafe(32)


def _rsa_2048() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    return private, public


BILLING_PRIVATE, BILLING_PUBLIC = _rsa_2048()

# Signers, as the calling services hold them.
TESTS = load_key("tests-1", "EdDSA", TESTS_PRIVATE, service="tests")
ORDERS_OLD = load_key("orders-1", "EdDSA", ORDERS_OLD_PRIVATE, service="orders")
ORDERS_NEW = load_key("orders-2", "EdDSA", ORDERS_NEW_PRIVATE, service="orders")
BILLING = load_key("billing-1", "RS256", BILLING_PRIVATE, service="billing")
INVENTORY = load_key("inventory-1", "HS256", INVENTORY_SECRET, service="inventory")
EVIL = load_key("evil-1", "EdDSA", EVIL_PRIVATE, service="evil")


def peer(kid: str, alg: str, text: str) -> dict[str, Any]:
    return {"kid": kid, "alg": alg, "key": {"value": text}}


def auth_settings(**section: Any) -> dict[str, Any]:
    """MICROKIT for the service "tests", which signs with tests-1 and trusts
    orders (two keys), billing (RSA), inventory (HMAC) and itself."""
    return {
        "SERVICE_NAME": "tests",
        "SERVICE_AUTH": {
            "SIGNING_KEYS": [peer("tests-1", "EdDSA", TESTS_PRIVATE)],
            "PEERS": {
                "orders": [
                    peer("orders-1", "EdDSA", ORDERS_OLD_PUBLIC),
                    peer("orders-2", "EdDSA", ORDERS_NEW_PUBLIC),
                ],
                "billing": [peer("billing-1", "RS256", BILLING_PUBLIC)],
                "inventory": [peer("inventory-1", "HS256", INVENTORY_SECRET)],
                "tests": [peer("tests-1", "EdDSA", TESTS_PUBLIC)],
            },
            **section,
        },
    }


def sign(
    key: Key,
    *,
    drop: tuple[str, ...] = (),
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A token signed with ``key``: valid for "tests" unless ``claims`` say
    otherwise; ``drop`` removes standard claims."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": key.service,
        "aud": "tests",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    for name in drop:
        payload.pop(name)
    headers = {"kid": key.kid, "typ": "svc+jwt", **(header or {})}
    return jwt.encode(payload, key.material, algorithm=key.alg, headers=headers)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def code_of(response: Response) -> str:
    """The ``code`` of a problem response."""
    assert response["Content-Type"] == "application/problem+json"
    return str(json.loads(response.content)["code"])


def forge(header: dict[str, Any], payload: dict[str, Any] | bytes, key: Key) -> str:
    """A token with exactly ``header`` and ``payload``, signed with the Ed25519
    ``key`` (PyJWT would normalise some headers away)."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(key.material.sign(signing_input.encode()))}"
