from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.permissions import AND, NOT, OR
from rest_framework.request import ForcedAuthentication, Request
from rest_framework.test import APIClient, APIRequestFactory

from django_microkit.service_auth import (
    HasServiceScope,
    IsService,
    ServicePrincipal,
    ServiceTokenAuthentication,
    keys,
    mint_service_token,
    verify_service_token,
)
from tests.service_auth_keys import (
    BILLING,
    BILLING_PUBLIC,
    EVIL,
    INVENTORY,
    ORDERS_NEW,
    ORDERS_NEW_PUBLIC,
    ORDERS_OLD,
    ORDERS_OLD_PUBLIC,
    TESTS,
    auth_settings,
    b64,
    code_of,
    forge,
    peer,
    segments,
    sign,
)

INVALID = 'Bearer realm="tests", error="invalid_token", error_description='
# The challenge of the views' second authentication class, BasicAuthentication.
BASIC = ', Basic realm="api"'


@pytest.fixture(autouse=True)
def _service_auth() -> Iterator[None]:
    with override_settings(MICROKIT=auth_settings()):
        yield


def call(url: str, token: str | None = None, method: str = "get", **extra: Any) -> Any:
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return getattr(APIClient(), method)(f"/service-auth/{url}", **extra)


def problem(response: Any, status: int, code: str, detail: str) -> None:
    """``response`` is exactly this problem document."""
    titles = {401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": titles[status],
        "status": status,
        "detail": detail,
        "code": code,
        "instance": response.wsgi_request.path,
        "request_id": response["X-Request-ID"],
    }


def assert_refused(response: Any, code: str, description: str) -> None:
    problem(response, 401, code, description)
    assert response["WWW-Authenticate"] == f'{INVALID}"{description}"{BASIC}'


# --- accepted ---------------------------------------------------------------


@pytest.mark.parametrize("key", [ORDERS_OLD, ORDERS_NEW, BILLING, INVENTORY, TESTS])
def test_each_kind_of_key_authenticates_its_service(key: Any) -> None:
    token = sign(key, scope="orders:read orders:write")
    response = call("service/", token)
    assert response.status_code == 200
    body = response.json()
    assert key.service == body["service"]
    assert body["scopes"] == ["orders:read", "orders:write"]
    assert jwt.decode(token, options={"verify_signature": False}) == body["auth"]


def test_request_user_is_a_service_principal_not_a_user() -> None:
    token = sign(ORDERS_NEW, scope="a b")
    principal = verify_service_token(token)
    assert ServicePrincipal("orders", frozenset({"a", "b"})) == principal
    assert principal.is_authenticated and not principal.is_anonymous
    assert not principal.is_staff and not principal.is_superuser
    assert principal.is_active
    assert "service:orders" == principal.pk == principal.id == str(principal)
    assert principal.get_username() == "service:orders"
    assert principal.service_name == "orders"
    assert principal.has_scope("a", "b") and not principal.has_scope("c")
    assert not principal.has_perm("x.y")
    assert not principal.has_perms(["x.y"])
    assert not principal.has_module_perms("x")
    assert principal.claims["iss"] == "orders"
    with pytest.raises(TypeError):
        principal.claims["iss"] = "evil"  # type: ignore[index]


def test_access_line_names_the_calling_service(log_lines: Any) -> None:
    assert call("service/", sign(ORDERS_NEW)).status_code == 200
    assert call("open/").status_code == 200
    with_caller, anonymous = log_lines.of("django_microkit.access")
    assert "orders" == with_caller["peer_service"] == ORDERS_NEW.service
    assert "peer_service" not in anonymous


@pytest.mark.django_db
def test_verifying_touches_no_database(django_assert_num_queries: Any) -> None:
    token = sign(ORDERS_NEW)
    with django_assert_num_queries(0):
        assert call("service/", token).status_code == 200


def test_expiry_within_the_leeway_is_accepted() -> None:
    now = int(time.time())
    token = sign(ORDERS_NEW, iat=now - 62, nbf=now - 62, exp=now - 2)
    assert call("service/", token).status_code == 200


def test_issue_time_within_the_leeway_is_accepted() -> None:
    now = int(time.time())
    token = sign(ORDERS_NEW, iat=now + 3, nbf=now + 3, exp=now + 63)
    assert call("service/", token).status_code == 200


@pytest.mark.parametrize(
    "typ", ["svc+jwt", "SVC+JWT", "application/svc+jwt"], ids=["plain", "case", "full"]
)
def test_type_header_forms(typ: str) -> None:
    token = sign(ORDERS_NEW, header={"typ": typ})
    assert call("service/", token).status_code == 200


def test_scheme_is_case_insensitive() -> None:
    token = sign(ORDERS_NEW)
    response = APIClient().get(
        "/service-auth/service/", HTTP_AUTHORIZATION=f"bearer {token}"
    )
    assert response.status_code == 200


def test_nbf_is_optional() -> None:
    assert call("service/", sign(ORDERS_NEW, drop=("nbf",))).status_code == 200


# --- refused ----------------------------------------------------------------


def test_tampered_payload() -> None:
    header, payload, signature = segments(sign(ORDERS_NEW))
    payload["scope"] = "orders:write"
    token = f"{b64(header)}.{b64(payload)}.{signature}"
    response = call("service/", token)
    assert_refused(
        response, "token_invalid", "The service token's signature does not verify."
    )


def test_tampered_signature() -> None:
    token = sign(ORDERS_NEW)
    middle = len(token) - 20
    flipped = "A" if token[middle] != "A" else "B"
    response = call("service/", token[:middle] + flipped + token[middle + 1 :])
    assert_refused(
        response, "token_invalid", "The service token's signature does not verify."
    )


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(alg: str) -> None:
    header = {"alg": alg, "kid": ORDERS_NEW.kid, "typ": "svc+jwt"}
    _, payload, _ = segments(sign(ORDERS_NEW))
    response = call("service/", f"{b64(header)}.{b64(payload)}.")
    assert_refused(
        response,
        "token_invalid",
        "The service token's algorithm is not the one of its key.",
    )


def test_hmac_signed_with_the_rsa_public_key_is_refused() -> None:
    # The HS/RS key confusion: an attacker who knows the RSA public key signs an
    # HS256 token with the PEM text as HMAC secret.
    header = {"alg": "HS256", "kid": BILLING.kid, "typ": "svc+jwt"}
    _, payload, _ = segments(sign(BILLING))
    signing_input = f"{b64(header)}.{b64(payload)}"
    mac = hmac.new(BILLING_PUBLIC.encode(), signing_input.encode(), hashlib.sha256)
    response = call("service/", f"{signing_input}.{b64(mac.digest())}")
    assert_refused(
        response,
        "token_invalid",
        "The service token's algorithm is not the one of its key.",
    )


def test_a_token_cannot_pick_another_asymmetric_algorithm() -> None:
    # billing's key is for RS256 only; PS256 with the same key is refused too.
    token = jwt.encode(
        {"iss": "billing"},
        BILLING.material,
        algorithm="PS256",
        headers={"kid": BILLING.kid, "typ": "svc+jwt"},
    )
    assert_refused(
        call("service/", token),
        "token_invalid",
        "The service token's algorithm is not the one of its key.",
    )


def test_expired() -> None:
    now = int(time.time())
    token = sign(ORDERS_NEW, iat=now - 120, nbf=now - 120, exp=now - 60)
    assert_refused(
        call("service/", token), "token_expired", "The service token has expired."
    )


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid(claim: str) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "nbf": now, "exp": now + 90, claim: now + 30}
    assert_refused(
        call("service/", sign(ORDERS_NEW, **claims)),
        "token_invalid",
        "The service token is not valid yet.",
    )


@pytest.mark.parametrize("audience", ["billing", ["tests"], ["tests", "billing"], ""])
def test_wrong_audience(audience: Any) -> None:
    assert_refused(
        call("service/", sign(ORDERS_NEW, aud=audience)),
        "wrong_audience",
        "The service token is meant for another service.",
    )


def test_missing_audience() -> None:
    assert_refused(
        call("service/", sign(ORDERS_NEW, drop=("aud",))),
        "wrong_audience",
        "The service token is meant for another service.",
    )


def test_unknown_issuer() -> None:
    assert_refused(
        call("service/", sign(EVIL)),
        "token_invalid",
        "The service token names an unknown key (kid).",
    )


@pytest.mark.parametrize("signer", [EVIL, ORDERS_NEW])
def test_an_unknown_key_does_not_tell_which_issuers_are_peers(signer: Any) -> None:
    # orders is a peer, payments is not: the refusals are the same.
    refusals = []
    for issuer in ("orders", "payments"):
        token = sign(signer, iss=issuer, header={"kid": "payments-1"})
        response = call("service/", token)
        body = response.json()
        del body["request_id"]
        refusals.append((response.status_code, body, response["WWW-Authenticate"]))
    assert refusals[0] == refusals[1]
    assert_refused(
        call("service/", sign(signer, iss="orders", header={"kid": "payments-1"})),
        "token_invalid",
        "The service token names an unknown key (kid).",
    )


def test_known_key_claiming_an_unknown_issuer() -> None:
    assert_refused(
        call("service/", sign(ORDERS_NEW, iss="evil")),
        "unknown_service",
        "The service token was issued by an unknown service.",
    )


def test_known_key_claiming_another_known_issuer() -> None:
    assert_refused(
        call("service/", sign(ORDERS_NEW, iss="billing")),
        "token_invalid",
        "The service token is signed with another service's key.",
    )


def test_unknown_key_of_a_known_service() -> None:
    token = sign(EVIL, iss="orders", header={"kid": "orders-9"})
    assert_refused(
        call("service/", token),
        "token_invalid",
        "The service token names an unknown key (kid).",
    )


@pytest.mark.parametrize(
    ("kid", "description"),
    [
        (None, "The service token names an unknown key (kid)."),
        (7, "The service token names an unknown key (kid)."),
        (["orders-2"], "The service token names an unknown key (kid)."),
    ],
)
def test_missing_or_malformed_kid(kid: Any, description: str) -> None:
    header, payload, signature = segments(sign(ORDERS_NEW))
    header["kid"] = kid
    if kid is None:
        del header["kid"]
    token = f"{b64(header)}.{b64(payload)}.{signature}"
    assert_refused(call("service/", token), "token_invalid", description)


def test_replayed_jti() -> None:
    token = sign(ORDERS_NEW)
    assert call("service/", token).status_code == 200
    assert_refused(
        call("service/", token),
        "token_replayed",
        "The service token has already been used.",
    )


def test_same_jti_from_two_services_is_not_a_replay() -> None:
    jti = secrets.token_urlsafe(16)
    assert call("service/", sign(ORDERS_NEW, jti=jti)).status_code == 200
    assert call("service/", sign(BILLING, jti=jti)).status_code == 200


def test_replay_protection_off_accepts_a_token_twice() -> None:
    token = sign(ORDERS_NEW)
    with override_settings(MICROKIT=auth_settings(REPLAY_PROTECTION=False)):
        assert call("service/", token).status_code == 200
        assert call("service/", token).status_code == 200


def test_lifetime_over_the_maximum() -> None:
    now = int(time.time())
    token = sign(ORDERS_NEW, iat=now, nbf=now, exp=now + 301)
    assert_refused(
        call("service/", token),
        "token_invalid",
        "The service token's lifetime is longer than this service accepts.",
    )


def test_expiry_before_issue() -> None:
    now = int(time.time())
    token = sign(ORDERS_NEW, iat=now, exp=now)
    assert_refused(
        call("service/", token),
        "token_invalid",
        "The service token's lifetime is longer than this service accepts.",
    )


MALFORMED = "The service token is malformed."


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("Bearer", "The Authorization header is malformed."),
        ("Bearer ", "The Authorization header is malformed."),
        ("Bearer a b", "The Authorization header is malformed."),
        ("Bearer garbage", MALFORMED),
        ("Bearer a.b.c", MALFORMED),
        ("Bearer ..", MALFORMED),
        ("Bearer " + "a" * 5000, MALFORMED),
        ("Bearer été.été.été", MALFORMED),
        ("Bearer " + b64(b"[1]") + ".e30.", MALFORMED),
        ("Bearer " + b64(b"{") + ".e30.", MALFORMED),
        ("Bearer " + b64(b"\xff") + ".e30.", MALFORMED),
        ("Bearer " + b64(b"[" * 2000) + ".e30.", MALFORMED),
        ("Bearer a.e30.", MALFORMED),
    ],
)
def test_garbage_in_the_header(value: str, description: str) -> None:
    response = APIClient().get("/service-auth/service/", HTTP_AUTHORIZATION=value)
    assert_refused(response, "token_invalid", description)


@pytest.mark.parametrize(
    ("header", "description"),
    [
        ({"typ": None}, "The token is not a service token (typ)."),
        ({"typ": "JWT"}, "The token is not a service token (typ)."),
        ({"typ": "at+jwt"}, "The token is not a service token (typ)."),
        ({"crit": ["exp"]}, "The service token uses an unsupported header extension."),
    ],
)
def test_header_refusals(header: dict[str, Any], description: str) -> None:
    response = call("service/", sign(ORDERS_NEW, header=header))
    assert_refused(response, "token_invalid", description)


@pytest.mark.parametrize(
    ("claims", "drop", "description"),
    [
        ({}, ("jti",), "The service token has no valid jti claim."),
        ({"jti": None}, (), "The service token has no valid jti claim."),
        ({"jti": ""}, (), "The service token has no valid jti claim."),
        ({"jti": "short"}, (), "The service token has no valid jti claim."),
        (
            {"jti": 12345678901234567890},
            (),
            "The service token has no valid jti claim.",
        ),
        ({}, ("exp",), "The service token's exp claim is missing or not a number."),
        ({}, ("iat",), "The service token's iat claim is missing or not a number."),
        (
            {"exp": "9999999999"},
            (),
            "The service token's exp claim is missing or not a number.",
        ),
        (
            {"iat": True},
            (),
            "The service token's iat claim is missing or not a number.",
        ),
        ({"nbf": "0"}, (), "The service token's nbf claim is missing or not a number."),
        (
            {"exp": 10**400},
            (),
            "The service token's exp claim is missing or not a number.",
        ),
        (
            {"nbf": -(10**400)},
            (),
            "The service token's nbf claim is missing or not a number.",
        ),
        (
            {"exp": "soon"},
            (),
            "The service token's exp claim is missing or not a number.",
        ),
        (
            {"iat": "now"},
            (),
            "The service token's iat claim is missing or not a number.",
        ),
        (
            {"nbf": "now"},
            (),
            "The service token's nbf claim is missing or not a number.",
        ),
        ({"scope": ["a"]}, (), "The service token's scope claim is malformed."),
        ({"scope": "a  b"}, (), "The service token's scope claim is malformed."),
        ({"scope": 'a "b"'}, (), "The service token's scope claim is malformed."),
    ],
)
def test_claim_refusals(
    claims: dict[str, Any], drop: tuple[str, ...], description: str
) -> None:
    response = call("service/", sign(ORDERS_NEW, drop=drop, **claims))
    assert_refused(response, "token_invalid", description)


def test_non_finite_time_is_refused() -> None:
    header, payload, _ = segments(sign(ORDERS_NEW))
    body = json.dumps(payload).replace(str(payload["exp"]), "Infinity")
    assert_refused(
        call("service/", forge(header, body.encode(), ORDERS_NEW)),
        "token_invalid",
        "The service token's exp claim is missing or not a number.",
    )


@pytest.mark.parametrize(
    "extension", [{"b64": True}, {"crit": ["b64"], "b64": True}], ids=["b64", "crit"]
)
def test_header_extensions_are_refused(extension: dict[str, Any]) -> None:
    header, payload, _ = segments(sign(ORDERS_NEW))
    assert_refused(
        call("service/", forge({**header, **extension}, payload, ORDERS_NEW)),
        "token_invalid",
        "The service token uses an unsupported header extension.",
    )


@pytest.mark.parametrize("issuer", [None, ["orders"], 7])
def test_missing_or_malformed_issuer(issuer: Any) -> None:
    header, payload, _ = segments(sign(ORDERS_NEW))
    payload["iss"] = issuer
    if issuer is None:
        del payload["iss"]
    assert_refused(
        call("service/", forge(header, payload, ORDERS_NEW)),
        "unknown_service",
        "The service token was issued by an unknown service.",
    )


def test_signed_payload_that_is_not_json() -> None:
    header = {"alg": "EdDSA", "kid": ORDERS_NEW.kid, "typ": "svc+jwt"}
    assert_refused(
        call("service/", forge(header, b"not json", ORDERS_NEW)),
        "token_invalid",
        "The service token's signature does not verify.",
    )


def test_unknown_key_and_unreadable_payload() -> None:
    header = {"alg": "EdDSA", "kid": "nobody-1", "typ": "svc+jwt"}
    assert_refused(
        call("service/", forge(header, b"not json", EVIL)),
        "token_invalid",
        "The service token names an unknown key (kid).",
    )


def test_refusal_on_an_open_endpoint_still_refuses() -> None:
    # A bad token is never silently downgraded to anonymous.
    response = call("open/", sign(EVIL))
    assert response.status_code == 401
    assert code_of(response) == "token_invalid"


def test_other_schemes_are_left_to_other_authenticators() -> None:
    response = APIClient().get("/service-auth/open/", HTTP_AUTHORIZATION="Token abc")
    assert response.status_code == 200
    assert response.json() == {"user": "AnonymousUser"}


# --- missing credentials and permissions -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "service/",
        "scoped/",
        "service-or-admin/",
        "scope-or-admin/",
        "admin-or-scope/",
        "either-scope/",
        "service-and-scope/",
        "object-all/",
    ],
)
def test_no_credentials_is_token_missing(url: str) -> None:
    response = call(url, method="post")
    problem(response, 401, "token_missing", "This endpoint needs a service token.")
    assert response["WWW-Authenticate"] == f'Bearer realm="tests"{BASIC}'


def test_a_composition_built_by_drf_first_keeps_the_precise_code() -> None:
    # (IsAdminUser | ReadOnly) & IsService: DRF's own OR inside DRF's own AND.
    response = call("drf-outer/")
    problem(response, 401, "token_missing", "This endpoint needs a service token.")
    assert response["WWW-Authenticate"] == f'Bearer realm="tests"{BASIC}'


def test_anonymous_reads_where_a_composition_allows_them() -> None:
    assert call("scope-or-read/").status_code == 200
    response = call("scope-or-read/", method="post")
    assert response.status_code == 401
    assert code_of(response) == "token_missing"


def insufficient(response: Any, scopes: str) -> None:
    detail = f"This endpoint requires the scope(s): {', '.join(scopes.split())}."
    problem(response, 403, "insufficient_scope", detail)
    assert (
        f'Bearer realm="tests", error="insufficient_scope", scope="{scopes}"'
        == response["WWW-Authenticate"]
    )


@pytest.mark.parametrize(
    ("url", "scope", "allowed", "required"),
    [
        ("scoped/", "orders:write orders:read", True, ""),
        ("scoped/", "orders:write", False, "orders:read orders:write"),
        ("scoped/", None, False, "orders:read orders:write"),
        ("scope-or-admin/", "catalog:write", True, ""),
        ("scope-or-admin/", "catalog:read", False, "catalog:write"),
        ("admin-or-scope/", "catalog:write", True, ""),
        ("admin-or-scope/", "catalog:read", False, "catalog:write"),
        ("either-scope/", "a", True, ""),
        ("either-scope/", "b", True, ""),
        ("either-scope/", "c", False, "a"),
        ("service-and-scope/", "x", True, ""),
        ("service-and-scope/", "y", False, "x"),
        ("read-and-scope/", "y", False, "x"),
        ("service-or-admin/", None, True, ""),
    ],
)
def test_scopes(url: str, scope: str | None, allowed: bool, required: str) -> None:
    claims: dict[str, Any] = {} if scope is None else {"scope": scope}
    response = call(url, sign(ORDERS_NEW, **claims))
    if allowed:
        assert response.status_code == 200
    else:
        insufficient(response, required)


def test_a_composition_allows_a_service_without_the_scope_to_read() -> None:
    assert call("scope-or-read/", sign(ORDERS_NEW)).status_code == 200
    insufficient(call("scope-or-read/", sign(ORDERS_NEW), method="post"), "x")


def test_object_permissions_through_compositions() -> None:
    token = sign(ORDERS_NEW, scope="x")
    assert call("object-any/?object=other", token).status_code == 200
    assert call("object-any/?object=orders", sign(ORDERS_NEW)).status_code == 200
    insufficient(call("object-any/?object=other", sign(ORDERS_NEW)), "x")
    assert call("object-all/?object=orders", sign(ORDERS_NEW)).status_code == 200
    response = call("object-all/?object=other", sign(ORDERS_NEW))
    assert response.status_code == 403
    assert code_of(response) == "permission_denied"


def test_negated_service_permission() -> None:
    assert call("not-service/").status_code == 200
    response = call("not-service/", sign(ORDERS_NEW))
    assert response.status_code == 403
    assert code_of(response) == "permission_denied"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()


@pytest.fixture
def users(db: None, settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("admin", password="pw", is_staff=True)
    User.objects.create_user("alice", password="pw")


@pytest.mark.usefixtures("users")
@pytest.mark.parametrize(
    ("url", "user", "status", "code"),
    [
        ("service-or-admin/", "admin", 200, None),
        ("scope-or-admin/", "admin", 200, None),
        ("admin-or-scope/", "admin", 200, None),
        ("service-or-admin/", "alice", 403, "permission_denied"),
        ("scope-or-admin/", "alice", 403, "permission_denied"),
        ("service/", "alice", 403, "permission_denied"),
        ("scoped/", "alice", 403, "permission_denied"),
    ],
)
def test_users_on_service_endpoints(
    url: str, user: str, status: int, code: str | None
) -> None:
    response = APIClient().get(f"/service-auth/{url}", HTTP_AUTHORIZATION=basic(user))
    assert status == response.status_code
    if code is not None:
        assert code == code_of(response)
        assert "WWW-Authenticate" not in response


@pytest.mark.usefixtures("users")
@pytest.mark.parametrize(
    ("url", "challenges"),
    [
        ("service/", f'Bearer realm="tests"{BASIC}'),
        ("token-only/", 'Bearer realm="tests"'),
        ("token-session-token/", 'Bearer realm="tests", Token'),
    ],
)
def test_a_401_names_every_accepted_scheme(url: str, challenges: str) -> None:
    # RFC 9110 §11.6.1: a failed Basic login is not told to use Bearer alone.
    wrong = "Basic " + base64.b64encode(b"admin:wrong").decode()
    for authorization in (wrong, None):
        headers: dict[str, Any] = (
            {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        )
        response = APIClient().get(f"/service-auth/{url}", **headers)
        assert response.status_code == 401
        assert challenges == response["WWW-Authenticate"]


def test_challenges_leave_out_forced_authentication() -> None:
    authentication = ServiceTokenAuthentication()
    forced = ForcedAuthentication(None, None)
    # DRF's stubs want BaseAuthentication; DRF's Request itself puts this one there.
    request = Request(
        APIRequestFactory().get("/"),
        authenticators=[forced],  # type: ignore[list-item]
    )
    assert authentication.authenticate_header(request) == 'Bearer realm="tests"'


@pytest.mark.usefixtures("users")
def test_service_only_message_for_users() -> None:
    response = APIClient().get(
        "/service-auth/service/", HTTP_AUTHORIZATION=basic("alice")
    )
    assert str(response.data["detail"]) == "Only services may call this endpoint."


def test_permission_message_outside_a_refusal() -> None:
    permission = IsService()
    assert permission.message == "Only services may call this endpoint."
    assert "lacks" in str(HasServiceScope("x")().message)


def test_has_service_scope_is_a_permission_of_its_scopes() -> None:
    first = HasServiceScope("b", "a")
    assert first == HasServiceScope("a", "b", "a")
    assert hash(first) == hash(HasServiceScope("a", "b"))
    assert first != HasServiceScope("a") and first != IsService()
    assert isinstance(first, IsService)
    # DRF calls each entry of permission_classes, and each operand of | & ~.
    assert first() is first
    assert repr(first) == "HasServiceScope('a', 'b')"
    assert frozenset({"a", "b"}) == first.required_scopes


def test_compositions_are_drf_own() -> None:
    from rest_framework.permissions import IsAdminUser, OperandHolder

    scope = HasServiceScope("x")
    # DRF's stubs take neither operator classes nor permission instances here.
    assert scope | IsAdminUser == OperandHolder(OR, scope, IsAdminUser)  # type: ignore[arg-type]
    assert IsAdminUser & scope == OperandHolder(AND, IsAdminUser, scope)  # type: ignore[arg-type]
    assert isinstance((~scope)(), NOT)


@pytest.mark.parametrize("scopes", [(), ("a b",), ("",), ('"',)])
def test_has_service_scope_needs_valid_scopes(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        HasServiceScope(*scopes)


# --- replay cache -----------------------------------------------------------


def test_replay_cache_failure_fails_closed() -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 1: every command fails at once.
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    with override_settings(CACHES=caches, MICROKIT=auth_settings(REPLAY_CACHE="down")):
        response = call("service/", sign(ORDERS_NEW))
    problem(
        response,
        503,
        "service_auth_unavailable",
        "Service tokens cannot be verified right now.",
    )
    assert "WWW-Authenticate" not in response


@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_replay_is_refused_by_another_process_sharing_redis() -> None:
    token = sign(ORDERS_NEW)
    assert call("service/", token).status_code == 200
    script = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from django.test import override_settings\n"
        "from rest_framework.test import APIClient\n"
        "with override_settings(MICROKIT=json.loads(sys.argv[1])):\n"
        "    r = APIClient().get('/service-auth/service/',\n"
        "        HTTP_AUTHORIZATION='Bearer ' + sys.argv[2])\n"
        "print(json.dumps({'status': r.status_code, 'code': r.json().get('code'),\n"
        "    'www': r.get('WWW-Authenticate')}))\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(auth_settings()), token],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert {
        "status": 401,
        "code": "token_replayed",
        "www": f'{INVALID}"The service token has already been used."{BASIC}',
    } == outcome


# --- rotation ---------------------------------------------------------------


def test_rotation_overlap_then_retirement() -> None:
    old_token, new_token = sign(ORDERS_OLD), sign(ORDERS_NEW)
    # During the overlap the receiver knows both keys.
    assert call("service/", old_token).status_code == 200
    assert call("service/", new_token).status_code == 200
    # Retiring the old key is a settings change.
    retired = auth_settings()
    retired["SERVICE_AUTH"]["PEERS"]["orders"] = [
        peer("orders-2", "EdDSA", ORDERS_NEW_PUBLIC)
    ]
    with override_settings(MICROKIT=retired):
        assert_refused(
            call("service/", sign(ORDERS_OLD)),
            "token_invalid",
            "The service token names an unknown key (kid).",
        )
        assert call("service/", sign(ORDERS_NEW)).status_code == 200


def test_signer_switches_keys_with_signing_key_id() -> None:
    signer = {
        "SIGNING_KEYS": [
            peer("orders-1", "EdDSA", _private(ORDERS_OLD)),
            peer("orders-2", "EdDSA", _private(ORDERS_NEW)),
        ],
        "PEERS": {
            "orders": [
                peer("orders-1", "EdDSA", ORDERS_OLD_PUBLIC),
                peer("orders-2", "EdDSA", ORDERS_NEW_PUBLIC),
            ]
        },
    }
    for kid in ("orders-1", "orders-2"):
        settings = {
            "SERVICE_NAME": "orders",
            "SERVICE_AUTH": {**signer, "SIGNING_KEY_ID": kid},
        }
        with override_settings(MICROKIT=settings):
            token = mint_service_token("orders")
            assert kid == jwt.get_unverified_header(token)["kid"]
            assert verify_service_token(token).name == "orders"


def _private(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(
        key.material.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


# --- minting ----------------------------------------------------------------


def test_minted_token_claims_and_header() -> None:
    before = int(time.time())
    token = mint_service_token("billing", ["b:write", "a:read", "b:write"])
    header, claims, _ = segments(token)
    assert header == {"alg": "EdDSA", "kid": "tests-1", "typ": "svc+jwt"}
    assert claims["iss"] == "tests"
    assert claims["aud"] == "billing"
    assert claims["scope"] == "a:read b:write"
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 60
    assert len(claims["jti"]) == 22
    assert claims["jti"] != segments(mint_service_token("billing"))[1]["jti"]


def test_minted_token_without_scopes_has_no_scope_claim() -> None:
    assert "scope" not in segments(mint_service_token("billing"))[1]


def test_minted_token_round_trip_through_a_view() -> None:
    response = call("service/", mint_service_token("tests", ["x"]))
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("service", "scopes")} == {
        "service": "tests",
        "scopes": ["x"],
    }


def test_token_lifetime_setting() -> None:
    with override_settings(MICROKIT=auth_settings(TOKEN_LIFETIME=120)):
        claims = segments(mint_service_token("billing"))[1]
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    ("audience", "scopes", "error"),
    [
        ("", (), ValueError),
        (None, (), ValueError),
        ("billing", ("a b",), ValueError),
        ("billing", (5,), ValueError),
        ("billing", "catalog:write", TypeError),
    ],
)
def test_mint_refuses_bad_arguments(audience: Any, scopes: Any, error: type) -> None:
    with pytest.raises(error):
        mint_service_token(audience, scopes)


@pytest.mark.parametrize(
    "microkit",
    [
        {"SERVICE_NAME": "tests"},
        {"SERVICE_AUTH": auth_settings()["SERVICE_AUTH"]},
    ],
    ids=["no key", "no name"],
)
def test_mint_needs_a_name_and_a_key(microkit: dict[str, Any]) -> None:
    with override_settings(MICROKIT=microkit), pytest.raises(ImproperlyConfigured):
        mint_service_token("billing")


def test_verify_needs_a_service_name() -> None:
    section = auth_settings(SIGNING_KEYS=[])["SERVICE_AUTH"]
    with (
        override_settings(MICROKIT={"SERVICE_AUTH": section}),
        pytest.raises(ImproperlyConfigured, match="SERVICE_NAME"),
    ):
        verify_service_token(sign(ORDERS_NEW))


def test_broken_configuration_raises_at_use() -> None:
    broken = auth_settings(TOKEN_LIFETIME=1000)
    with override_settings(MICROKIT=broken):
        with pytest.raises(ImproperlyConfigured, match=r"E052"):
            verify_service_token(sign(ORDERS_NEW))
        with pytest.raises(ImproperlyConfigured, match=r"E052"):
            mint_service_token("billing")


def test_keys_are_loaded_once() -> None:
    first = keys.get_config()
    assert first is keys.get_config()
    with override_settings(MICROKIT=auth_settings(LEEWAY=1)):
        assert first is not keys.get_config()
        assert keys.get_config().leeway == 1


# --- reusing minted tokens --------------------------------------------------


def test_tokens_are_fresh_by_default() -> None:
    assert mint_service_token("billing") != mint_service_token("billing")


def test_reuse_for_listed_audiences(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(MICROKIT=auth_settings(REUSE_TOKENS_FOR=["billing"])):
        now = time.time()
        clock = "django_microkit.service_auth.tokens.time.time"
        monkeypatch.setattr(clock, lambda: now)
        first = mint_service_token("billing", ["a"])
        assert first == mint_service_token("billing", ["a"])
        assert first != mint_service_token("billing", ["b"])
        assert first != mint_service_token("inventory", ["a"])
        # Renewed once three quarters of its 60 s are gone.
        monkeypatch.setattr(clock, lambda: now + 44)
        assert first == mint_service_token("billing", ["a"])
        monkeypatch.setattr(clock, lambda: now + 46)
        assert first != mint_service_token("billing", ["a"])


def test_reused_tokens_need_a_receiver_without_replay_protection() -> None:
    # The trade-off in one test: a reused token is a replay to a receiver that
    # protects against replays, and fine for one that does not.
    with override_settings(MICROKIT=auth_settings(REUSE_TOKENS_FOR=["tests"])):
        token = mint_service_token("tests")
        assert token == mint_service_token("tests")
        assert call("service/", token).status_code == 200
        assert code_of(call("service/", token)) == "token_replayed"
    relaxed = auth_settings(REUSE_TOKENS_FOR=["tests"], REPLAY_PROTECTION=False)
    with override_settings(MICROKIT=relaxed):
        token = mint_service_token("tests")
        assert call("service/", token).status_code == 200
        assert call("service/", mint_service_token("tests")).status_code == 200


def test_settings_change_forgets_reused_tokens() -> None:
    with override_settings(MICROKIT=auth_settings(REUSE_TOKENS_FOR=["billing"])):
        first = mint_service_token("billing")
    with override_settings(MICROKIT=auth_settings(REUSE_TOKENS_FOR=["billing"])):
        assert first != mint_service_token("billing")


# --- OpenAPI ----------------------------------------------------------------


@functools.cache
def schema(version: str = "3.0.3") -> dict[str, Any]:
    """The test project's OpenAPI document (generated once per version)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings
    from openapi_spec_validator import validate

    with patched_settings({"OAS_VERSION": version}):
        document = dict(SchemaGenerator().get_schema(request=None, public=True))
    validate(document)
    return document


def security(document: dict[str, Any], path: str) -> list[dict[str, list[str]]]:
    return list(document["paths"][f"/service-auth/{path}"]["get"]["security"])


def test_openapi_security_scheme() -> None:
    document = schema()
    assert document["components"]["securitySchemes"]["ServiceToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A short-lived JWT (typ svc+jwt) signed by a known calling "
        "service, with this service as its audience.",
    }
    # OpenAPI 3.0 allows scopes only for OAuth2 schemes.
    assert security(document, "scoped/") == [{"ServiceToken": []}, {"basicAuth": []}]


@pytest.mark.parametrize(
    ("path", "scopes"),
    [
        ("scoped/", ["orders:read", "orders:write"]),
        ("service-and-scope/", ["x"]),
        ("scope-or-admin/", []),
        ("service/", []),
    ],
)
def test_openapi_31_lists_required_scopes(path: str, scopes: list[str]) -> None:
    assert security(schema("3.1.0"), path)[0] == {"ServiceToken": scopes}


def test_service_tokens_can_be_drf_default_authentication() -> None:
    """Naming the class in DEFAULT_AUTHENTICATION_CLASSES must not make DRF and
    django-microkit import each other in a circle at start-up."""
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from rest_framework.views import APIView\n"
        "call_command('check')\n"
        "print([c.__name__ for c in APIView.authentication_classes])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_default_auth",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['ServiceTokenAuthentication']"
