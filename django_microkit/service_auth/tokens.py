"""Minting and verifying service tokens.

A service token is a JWS-signed JWT (RFC 7519) profiled after RFC 8725:

- header ``{"alg": ..., "kid": ..., "typ": "svc+jwt"}``: the explicit ``typ``
  keeps a service token from being mistaken for any other JWT (an ID token, a
  user access token) and the other way round;
- claims ``iss`` (calling service), ``aud`` (one target service, a string),
  ``iat``, ``nbf``, ``exp``, ``jti`` (128 random bits) and, optionally,
  ``scope`` (space-separated, as in RFC 8693 §4.2).

A verifier looks the key up by ``kid`` among the keys configured for known
peers, and accepts only the one algorithm configured for that key: the token
header never chooses how it is verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import jwt
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from jwt.types import Options
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotAuthenticated,
    PermissionDenied,
)

from django_microkit.conf import derived, microkit_settings
from django_microkit.errors.problem import Problem
from django_microkit.service_auth.keys import Key, ServiceAuthConfig, get_config

__all__ = [
    "InsufficientScope",
    "ServicePrincipal",
    "ServiceTokenExpired",
    "ServiceTokenInvalid",
    "ServiceTokenMissing",
    "ServiceTokenReplayed",
    "TOKEN_TYPE",
    "UnknownService",
    "WrongAudience",
    "encode_token",
    "mint_service_token",
    "realm",
    "token_claims",
    "validate_scopes",
    "verify_service_token",
]

#: The ``typ`` header of a service token (RFC 8725 §3.11; the media type
#: ``application/svc+jwt`` with its ``application/`` prefix left out).
TOKEN_TYPE = "svc+jwt"
_ACCEPTED_TYPES = frozenset({TOKEN_TYPE, f"application/{TOKEN_TYPE}"})
# Far above any real token (an RSA-4096 token is under 1,500 characters);
# longer input is refused before it is parsed.
_MAX_TOKEN_LENGTH = 4096
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_JTI_LENGTH = range(16, 257)
_REPLAY_KEY_PREFIX = "microkit:service-auth:jti:"
# A reused token is replaced once less than this share of its lifetime is left.
_REUSE_MARGIN = 0.25

logger = logging.getLogger("django_microkit.service_auth")


# --- refusals ---------------------------------------------------------------


class ServiceTokenMissing(NotAuthenticated):
    """401: the endpoint needs a service and the request carries no credentials."""

    default_code = "token_missing"
    default_detail = _("This endpoint needs a service token.")


class ServiceTokenInvalid(AuthenticationFailed):
    """401: the token is malformed, badly signed or otherwise unacceptable.

    The detail says which check failed; it is also sent as the
    ``error_description`` of ``WWW-Authenticate`` (RFC 6750 §3).
    """

    default_code = "token_invalid"
    default_detail = _("The service token is invalid.")


class ServiceTokenExpired(ServiceTokenInvalid):
    default_code = "token_expired"
    default_detail = _("The service token has expired.")


class ServiceTokenReplayed(ServiceTokenInvalid):
    default_code = "token_replayed"
    default_detail = _("The service token has already been used.")


class UnknownService(ServiceTokenInvalid):
    default_code = "unknown_service"
    default_detail = _("The service token was issued by an unknown service.")


class WrongAudience(ServiceTokenInvalid):
    default_code = "wrong_audience"
    default_detail = _("The service token is meant for another service.")


class InsufficientScope(PermissionDenied):
    """403: a valid service token without a scope the endpoint requires.

    Carries ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
    (RFC 6750 §3.1) in ``auth_header``, which DRF's exception handling sends.
    """

    default_code = "insufficient_scope"
    default_detail = _("The service token lacks a scope this endpoint requires.")

    def __init__(self, scopes: Iterable[str]) -> None:
        self.scopes = tuple(sorted(scopes))
        super().__init__(
            detail=_("This endpoint requires the scope(s): %(scopes)s.")
            % {"scopes": ", ".join(self.scopes)}
        )
        self.auth_header = (
            f'Bearer realm="{realm()}", error="insufficient_scope", '
            f'scope="{" ".join(self.scopes)}"'
        )


def realm() -> str:
    """The ``realm`` of ``WWW-Authenticate``: this service's name, made safe
    for a quoted string."""
    name = re.sub(r'[^\x20-\x7E]|["\\]', "", microkit_settings.SERVICE_NAME)
    return name or "service"


# --- the principal ----------------------------------------------------------


@dataclass(frozen=True)
class ServicePrincipal:
    """The calling service, as ``request.user`` of a service-authenticated request.

    Not a Django user: it has no database row, no password, no permissions and
    no session. It answers the attributes authentication and permission code
    asks of a user (``is_authenticated``, ``is_staff``, ``has_perm`` ...) so
    that user-oriented permissions (``IsAdminUser``) simply refuse it.
    """

    name: str
    scopes: frozenset[str] = frozenset()
    #: The verified token claims (also ``request.auth``).
    claims: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False
    is_active: ClassVar[bool] = True
    is_staff: ClassVar[bool] = False
    is_superuser: ClassVar[bool] = False

    @property
    def pk(self) -> str:
        """A stable identifier (``"service:orders"``), so that per-user features
        such as DRF's ``UserRateThrottle`` tell services apart."""
        return f"service:{self.name}"

    @property
    def id(self) -> str:
        return self.pk

    @property
    def service_name(self) -> str:
        """The calling service's name: the access log records it as
        ``peer_service``."""
        return self.name

    def get_username(self) -> str:
        return self.pk

    def __str__(self) -> str:
        return self.pk

    def has_scope(self, *scopes: str) -> bool:
        """Whether the token granted every one of ``scopes``."""
        return self.scopes.issuperset(scopes)

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False


# --- minting ----------------------------------------------------------------


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` sorted and deduplicated; ``ValueError`` for one that is not an
    RFC 6749 scope token (no spaces, quotes or backslashes)."""
    if isinstance(scopes, str):
        raise TypeError("scopes must be an iterable of scope names, not a str")
    unique = set(scopes)
    for scope in unique:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"Not a valid scope: {scope!r}")
    return tuple(sorted(unique))


def token_claims(
    issuer: str,
    audience: str,
    scopes: tuple[str, ...],
    lifetime: int,
    now: int,
) -> dict[str, Any]:
    """The claims of a new token."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return claims


def encode_token(key: Key, claims: Mapping[str, Any]) -> str:
    """``claims`` signed with ``key``, with the header ``kid``/``alg``/``typ``."""
    return jwt.encode(
        dict(claims),
        key.material,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": TOKEN_TYPE},
    )


@derived(fork_safe=True)
def _reusable() -> tuple[
    threading.Lock, dict[tuple[str, tuple[str, ...]], tuple[str, float]]
]:
    """(audience, scopes) -> (token, time to renew it), for ``REUSE_TOKENS_FOR``,
    and the lock guarding it; forgotten with the keys that signed the tokens,
    and in a forked child (a lock held at fork() would stay held there)."""
    return threading.Lock(), {}


def mint_service_token(audience: str, scopes: Iterable[str] = ()) -> str:
    """A signed token for calling the service ``audience`` with ``scopes``.

    Each call mints a new token with a new ``jti``, as a receiver with replay
    protection needs. For audiences listed in ``REUSE_TOKENS_FOR`` a token is
    reused until a quarter of its lifetime is left.

    Raises ``ImproperlyConfigured`` when this service has no signing key.
    """
    if not isinstance(audience, str) or not audience:
        raise ValueError("audience must be the name of the service to call")
    wanted = validate_scopes(scopes)
    config = get_config()
    key = config.signing_key
    if key is None or not config.service:
        raise ImproperlyConfigured(
            "Minting a service token needs MICROKIT['SERVICE_NAME'] and a key in "
            "MICROKIT['SERVICE_AUTH']['SIGNING_KEYS']."
        )
    if audience not in config.reuse_tokens_for:
        return _mint(config, key, audience, wanted)
    now = time.time()
    lock, reusable = _reusable()
    with lock:
        cached = reusable.get((audience, wanted))
        if cached is not None and cached[1] > now:
            return cached[0]
        token = _mint(config, key, audience, wanted)
        renew_at = now + config.lifetime * (1 - _REUSE_MARGIN)
        reusable[(audience, wanted)] = (token, renew_at)
        return token


def _mint(
    config: ServiceAuthConfig, key: Key, audience: str, scopes: tuple[str, ...]
) -> str:
    claims = token_claims(
        config.service, audience, scopes, config.lifetime, int(time.time())
    )
    return encode_token(key, claims)


# --- verifying --------------------------------------------------------------

# PyJWT checks the signature, these claims' presence, iat, nbf and exp (with
# the leeway), iss, aud and that jti is a string: a service token has one
# audience, a string, and no sub (RFC 7519 §4.1.2 leaves it to the profile).
_DECODE_OPTIONS: Options = {
    "require": ["iss", "aud", "iat", "exp", "jti"],
    "strict_aud": True,
    "verify_sub": False,
}


def verify_service_token(token: str) -> ServicePrincipal:
    """The principal of a valid ``token``; raises a :class:`ServiceTokenInvalid`
    subclass saying why a token is refused.

    Checks, in order: shape and ``typ``; ``kid`` of a known peer key and the
    ``alg`` configured for it (before any signature work, and without looking
    at ``iss``, so an unsigned token learns nothing of the peers); then PyJWT checks the
    signature, ``iat``/``nbf`` not in the future and ``exp`` not past (with the
    leeway), ``iss`` the key's service, ``aud`` this service, ``jti`` a string;
    then the times are JSON numbers, the lifetime (``exp - iat``) at most
    ``MAX_TOKEN_LIFETIME``, ``jti`` 16-256 characters, ``scope`` well-formed,
    and ``jti`` not seen before (replay protection).
    """
    config = get_config()
    if not config.service:
        raise ImproperlyConfigured(
            "Verifying service tokens needs MICROKIT['SERVICE_NAME']."
        )
    key = _key_for(config, token)
    try:
        claims = jwt.decode(
            token,
            key.material,
            algorithms=[key.alg],
            audience=config.service,
            issuer=key.service,
            leeway=config.leeway,
            options=_DECODE_OPTIONS,
        )
    except jwt.InvalidTokenError as exc:
        raise _refusal(config, token, exc) from None
    exp, iat = _times(claims)
    if not 0 < exp - iat <= config.max_lifetime:
        raise ServiceTokenInvalid(
            _("The service token's lifetime is longer than this service accepts.")
        )
    jti: str = claims["jti"]
    if len(jti) not in _JTI_LENGTH:
        raise ServiceTokenInvalid(_("The service token has no valid jti claim."))
    scopes = _scopes(claims)
    if config.replay_protection:
        _claim_once(config, key.service, jti, exp)
    return ServicePrincipal(
        name=key.service, scopes=scopes, claims=MappingProxyType(claims)
    )


def _key_for(config: ServiceAuthConfig, token: str) -> Key:
    header = _header(token)
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
        raise ServiceTokenInvalid(_("The token is not a service token (typ)."))
    if "crit" in header or "b64" in header:
        raise ServiceTokenInvalid(
            _("The service token uses an unsupported header extension.")
        )
    kid = header.get("kid")
    key = config.peer_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        # The same refusal whatever ``iss`` says: a token nobody could sign
        # must not learn which services are trusted.
        raise ServiceTokenInvalid(_("The service token names an unknown key (kid)."))
    if header.get("alg") != key.alg:
        # RFC 8725 §3.1: the key decides the algorithm, never the token.
        raise ServiceTokenInvalid(
            _("The service token's algorithm is not the one of its key.")
        )
    return key


def _header(token: str) -> dict[str, Any]:
    if len(token) > _MAX_TOKEN_LENGTH:
        raise ServiceTokenInvalid(_("The service token is malformed."))
    try:
        return jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise ServiceTokenInvalid(_("The service token is malformed.")) from None
    except jwt.InvalidTokenError:
        # A kid that is not a string, or a crit PyJWT does not support: PyJWT
        # parsed the header and refused it; _key_for says which refusal it is.
        return _json_segment(token, 0) or {}


def _refusal(
    config: ServiceAuthConfig, token: str, exc: jwt.InvalidTokenError
) -> ServiceTokenInvalid:
    """The refusal for what PyJWT found wrong with a token."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return ServiceTokenExpired()
    if isinstance(exc, jwt.ImmatureSignatureError):
        return ServiceTokenInvalid(_("The service token is not valid yet."))
    missing = getattr(exc, "claim", None)
    if isinstance(exc, jwt.InvalidAudienceError) or missing == "aud":
        return WrongAudience()
    if isinstance(exc, jwt.InvalidIssuerError) or missing == "iss":
        # The signature verified, so the key is known: the token names another
        # service than the key's.
        if _known_issuer(config, token):
            return ServiceTokenInvalid(
                _("The service token is signed with another service's key.")
            )
        return UnknownService()
    if isinstance(exc, jwt.exceptions.InvalidJTIError) or missing == "jti":
        return ServiceTokenInvalid(_("The service token has no valid jti claim."))
    if not isinstance(exc, jwt.InvalidSignatureError):
        # A time claim PyJWT could not read as an integer, or a missing one.
        claims = _json_segment(token, 1)
        if claims is not None:
            try:
                _times(claims)
            except ServiceTokenInvalid as refusal:
                return refusal
    return ServiceTokenInvalid(_("The service token's signature does not verify."))


def _json_segment(token: str, index: int) -> dict[str, Any] | None:
    """The JSON object in segment ``index`` of ``token``, or ``None``."""
    segment = token.split(".")[index]
    try:
        value = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _known_issuer(config: ServiceAuthConfig, token: str) -> bool:
    # Asked only once the signature verified: the caller holds a peer's key.
    issuer = (_json_segment(token, 1) or {}).get("iss")
    return isinstance(issuer, str) and issuer in config.peers


#: Seconds since the epoch a NumericDate may name (far past any real date; the
#: largest integer a JSON number holds exactly).
_MAX_NUMERIC_DATE = 2**53


def _times(claims: Mapping[str, Any]) -> tuple[float, float]:
    """``exp`` and ``iat``, once they and ``nbf`` are JSON numbers (RFC 7519
    §2 NumericDate), which PyJWT does not insist on: it reads ``"10"`` and
    ``true`` as integers."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name == "nbf" and value is None:
            continue
        # A range test, not math.isfinite(): that raises OverflowError on an
        # int too large for a float; NaN and infinities fail it too.
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not -_MAX_NUMERIC_DATE <= value <= _MAX_NUMERIC_DATE
        ):
            raise ServiceTokenInvalid(
                _("The service token's %(claim)s claim is missing or not a number.")
                % {"claim": name}
            )
    return claims["exp"], claims["iat"]


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if scope is None:
        return frozenset()
    if isinstance(scope, str):
        scopes = scope.split(" ")
        if all(_SCOPE_TOKEN.fullmatch(s) for s in scopes):
            return frozenset(scopes)
    raise ServiceTokenInvalid(_("The service token's scope claim is malformed."))


def _claim_once(config: ServiceAuthConfig, issuer: str, jti: str, exp: float) -> None:
    """Record ``jti`` for as long as its token could still be accepted; refuse
    it if it was already recorded. Fails closed: no cache, no access."""
    cache = caches[config.replay_cache]
    digest = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
    timeout = max(1, math.ceil(exp + config.leeway - time.time()))
    try:
        first_use = cache.add(_REPLAY_KEY_PREFIX + digest, 1, timeout)
    except Exception:
        logger.exception("Service token replay check failed: cache unavailable")
        raise Problem(
            503,
            "service_auth_unavailable",
            detail="Service tokens cannot be verified right now.",
        ) from None
    if not first_use:
        raise ServiceTokenReplayed()
