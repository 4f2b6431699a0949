"""``MICROKIT["SERVICE_AUTH"]`` resolved into keys, once.

Key material is read (environment variable, file or inline value), parsed and
matched against its algorithm the first time it is needed, then kept until
``MICROKIT`` changes. The same code reports every problem as an
:class:`~django_microkit.checks.Issue` (see :mod:`.checks`), so ``manage.py
check`` and a running service never disagree about what a setting means.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from django.core.exceptions import ImproperlyConfigured

from django_microkit.checks import Issue
from django_microkit.conf import (
    DEFAULTS,
    Option,
    ServiceAuthSettings,
    derived,
    microkit_settings,
)

__all__ = [
    "KID_PATTERN",
    "Key",
    "MAX_LEEWAY",
    "MAX_LIFETIME_CAP",
    "SUPPORTED_ALGORITHMS",
    "ServiceAuthConfig",
    "build_config",
    "generate_key",
    "get_config",
    "load_key",
    "new_key_id",
]

_SPEC = cast("dict[str, Option]", DEFAULTS["SERVICE_AUTH"])

#: Every algorithm a key may use: the default of ``ALGORITHMS``. ``none`` is
#: never one of them (RFC 8725 §3.1).
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(_SPEC["ALGORITHMS"].default)
#: The highest ``MAX_TOKEN_LIFETIME`` a service may configure, in seconds.
MAX_LIFETIME_CAP = 3600
#: The highest ``LEEWAY`` a service may configure, in seconds.
MAX_LEEWAY = 60

# RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_RSA_MIN_BITS = 2048
#: What a key id may be: it travels in every token header.
KID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ENTRY_FIELDS = frozenset({"kid", "alg", "key"})
_SOURCES = frozenset({"env", "file", "value"})
_WHERE = "MICROKIT['SERVICE_AUTH']"

_PRIVATE_TYPES = (
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
)
_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "EdDSA": (
        ed25519.Ed25519PrivateKey,
        ed25519.Ed25519PublicKey,
        ed448.Ed448PrivateKey,
        ed448.Ed448PublicKey,
    ),
    "ES256": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    "PS256": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
    "RS256": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
}
_KEY_KIND = {
    "EdDSA": "an Ed25519 or Ed448 key",
    "ES256": "an EC key on curve P-256",
    "PS256": "an RSA key",
    "RS256": "an RSA key",
}


@dataclass(frozen=True)
class Key:
    """A loaded key: its id, the one algorithm it may be used with, the service
    whose key it is, and the material (``bytes`` for HMAC, else a
    ``cryptography`` key object: private for signing, public for verifying)."""

    kid: str
    alg: str
    service: str
    material: Any = field(repr=False)


@dataclass(frozen=True)
class ServiceAuthConfig:
    """Everything service authentication needs, derived from the settings."""

    service: str
    signing_key: Key | None
    #: kid -> key for every peer; key ids are unique across peers.
    peer_keys: Mapping[str, Key]
    peers: frozenset[str]
    lifetime: int
    max_lifetime: int
    leeway: int
    replay_protection: bool
    replay_cache: str
    reuse_tokens_for: frozenset[str]


class _Collector(list[Issue]):
    def add(self, check_id: str, msg: str, hint: str) -> None:
        self.append(Issue(check_id, msg, hint))


def build_config(
    service: str, merged: Mapping[str, Any]
) -> tuple[ServiceAuthConfig, list[Issue]]:
    """Resolve ``merged`` (the merged ``SERVICE_AUTH`` settings) into keys.

    Entries with a problem are left out of the configuration and described in
    the returned issues.
    """
    found = _Collector()
    # Values of the wrong type are reported by E003; fall back to the defaults,
    # so that from here on every value has the type its key says.
    section = cast(
        "ServiceAuthSettings",
        {
            name: merged[name] if option.accepts(merged[name]) else option.default
            for name, option in _SPEC.items()
        },
    )
    allowed = _allowed_algorithms(section["ALGORITHMS"], found)
    lifetime, max_lifetime, leeway = _times(section, found)
    signing = _signing_key(service, section, allowed, found)
    peer_keys = _peer_keys(service, section["PEERS"], allowed, found, signing)
    config = ServiceAuthConfig(
        service=service,
        signing_key=signing,
        peer_keys=peer_keys,
        peers=frozenset(
            name for name in section["PEERS"] if isinstance(name, str) and name
        ),
        lifetime=lifetime,
        max_lifetime=max_lifetime,
        leeway=leeway,
        replay_protection=section["REPLAY_PROTECTION"],
        replay_cache=section["REPLAY_CACHE"],
        reuse_tokens_for=frozenset(
            a for a in section["REUSE_TOKENS_FOR"] if isinstance(a, str)
        ),
    )
    return config, found


def _allowed_algorithms(value: Iterable[Any], found: _Collector) -> frozenset[str]:
    allowed = set()
    for alg in value:
        if isinstance(alg, str) and alg in SUPPORTED_ALGORITHMS:
            allowed.add(alg)
        else:
            found.add(
                "django_microkit.E051",
                f"{_WHERE}['ALGORITHMS'] lists {_describe_alg(alg)}.",
                "Allow only algorithms from: " + ", ".join(SUPPORTED_ALGORITHMS) + ".",
            )
    return frozenset(allowed)


def _describe_alg(alg: Any) -> str:
    if isinstance(alg, str) and alg.lower() == "none":
        return "'none', which would accept unsigned tokens"
    return f"the unsupported algorithm {alg!r}"


def _times(section: ServiceAuthSettings, found: _Collector) -> tuple[int, int, int]:
    max_lifetime = _bounded(
        section,
        "MAX_TOKEN_LIFETIME",
        (1, MAX_LIFETIME_CAP, ""),
        "Service tokens are short-lived: keep the maximum at a few minutes "
        "(default 300).",
        found,
    )
    lifetime = _bounded(
        section,
        "TOKEN_LIFETIME",
        (1, max_lifetime, " (MAX_TOKEN_LIFETIME)"),
        "Use a lifetime of about a minute (default 60); receivers refuse "
        "tokens living longer than their MAX_TOKEN_LIFETIME.",
        found,
    )
    leeway = _bounded(
        section,
        "LEEWAY",
        (0, MAX_LEEWAY, ""),
        "Allow a few seconds of clock skew (default 5) and keep the clocks "
        "synchronised with NTP.",
        found,
    )
    return lifetime, max_lifetime, leeway


def _bounded(
    section: ServiceAuthSettings,
    name: Literal["MAX_TOKEN_LIFETIME", "TOKEN_LIFETIME", "LEEWAY"],
    bounds: tuple[int, int, str],
    hint: str,
    found: _Collector,
) -> int:
    """``section[name]`` brought into ``bounds`` (low, high, and a note saying
    where the bound comes from), with E052 if it was outside."""
    value = section[name]
    low, high, note = bounds
    if low <= value <= high:
        return value
    found.add(
        "django_microkit.E052",
        f"{_WHERE}[{name!r}] is {value}, outside {low}..{high} seconds{note}.",
        hint,
    )
    return min(max(value, low), high)


def _signing_key(
    service: str,
    section: ServiceAuthSettings,
    allowed: frozenset[str],
    found: _Collector,
) -> Key | None:
    where = f"{_WHERE}['SIGNING_KEYS']"
    keys: dict[str, Key] = {}
    for index, entry in enumerate(section["SIGNING_KEYS"]):
        key = _load_entry(entry, f"{where}[{index}]", service, "sign", allowed, found)
        if key is None:
            continue
        if key.kid in keys:
            _duplicate(key.kid, f"{where}[{index}]", found)
            continue
        keys[key.kid] = key
    chosen = section["SIGNING_KEY_ID"]
    if chosen:
        if chosen not in keys:
            found.add(
                "django_microkit.E058",
                f"{_WHERE}['SIGNING_KEY_ID'] is {chosen!r}, which is not the kid "
                "of a usable key in SIGNING_KEYS.",
                "Name one of the SIGNING_KEYS entries (see the other messages if "
                "that key failed to load).",
            )
            return None
        return keys[chosen]
    if len(section["SIGNING_KEYS"]) > 1:
        found.add(
            "django_microkit.E058",
            f"{where} holds several keys but {_WHERE}['SIGNING_KEY_ID'] does not "
            "say which one signs.",
            "Set SIGNING_KEY_ID to the kid of the key to sign with.",
        )
        return None
    return next(iter(keys.values()), None)


def _peer_keys(
    service: str,
    peers: Mapping[Any, Any],
    allowed: frozenset[str],
    found: _Collector,
    signing: Key | None,
) -> dict[str, Key]:
    keys: dict[str, Key] = {}
    for name, entries in peers.items():
        where = f"{_WHERE}['PEERS'][{name!r}]"
        if not isinstance(name, str) or not name:
            found.add(
                "django_microkit.E057",
                f"{where}: a peer is named by its non-empty service name.",
                'Write PEERS = {"orders": [{"kid": ..., "alg": ..., "key": ...}]}.',
            )
            continue
        if not isinstance(entries, (list, tuple)):
            found.add(
                "django_microkit.E057",
                f"{where} must be a list of keys, not {type(entries).__name__}.",
                'Write PEERS = {"orders": [{"kid": ..., "alg": ..., "key": ...}]}.',
            )
            continue
        for index, entry in enumerate(entries):
            key = _load_entry(
                entry, f"{where}[{index}]", name, "verify", allowed, found
            )
            if key is None:
                continue
            clash = key.kid in keys or (
                signing is not None and key.kid == signing.kid and name != service
            )
            if clash:
                _duplicate(key.kid, f"{where}[{index}]", found)
                continue
            keys[key.kid] = key
    return keys


def _duplicate(kid: str, where: str, found: _Collector) -> None:
    found.add(
        "django_microkit.E053",
        f"{where}: the key id {kid!r} is used twice.",
        "Give every key its own kid (for example '<service>-<date>'); a token "
        "names its key by kid alone.",
    )


def _load_entry(
    entry: Any,
    where: str,
    service: str,
    use: Literal["sign", "verify"],
    allowed: frozenset[str],
    found: _Collector,
) -> Key | None:
    if not isinstance(entry, Mapping) or set(entry) != _ENTRY_FIELDS:
        found.add(
            "django_microkit.E057",
            f"{where} must be a dict with exactly the keys 'kid', 'alg' and 'key'.",
            'Write {"kid": "orders-2025-06", "alg": "EdDSA", '
            '"key": {"env": "ORDERS_SIGNING_KEY"}}.',
        )
        return None
    kid, alg, source = entry["kid"], entry["alg"], entry["key"]
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        found.add(
            "django_microkit.E057",
            f"{where}['kid'] must be 1 to 128 characters of [A-Za-z0-9._:-].",
            "Use an id such as 'orders-2025-06'.",
        )
        return None
    if alg not in allowed:
        known = isinstance(alg, str) and alg in SUPPORTED_ALGORITHMS
        found.add(
            "django_microkit.E051",
            f"{where}['alg'] is "
            + (
                f"{alg!r}, which {_WHERE}['ALGORITHMS'] does not allow."
                if known
                else f"{_describe_alg(alg)}."
            ),
            "Use one of: " + ", ".join(sorted(allowed or SUPPORTED_ALGORITHMS)) + ".",
        )
        return None
    text = _read_source(source, f"{where}['key']", found)
    if text is None:
        return None
    material = _parse_material(text, alg, use, f"{where}['key']", found)
    if material is None:
        return None
    return Key(kid=kid, alg=alg, service=service, material=material)


def _read_source(source: Any, where: str, found: _Collector) -> str | None:
    if (
        not isinstance(source, Mapping)
        or len(source) != 1
        or not set(source) <= _SOURCES
        or not isinstance(next(iter(source.values())), str)
    ):
        found.add(
            "django_microkit.E057",
            f"{where} must be one of {{'env': NAME}}, {{'file': PATH}} or "
            "{'value': TEXT}.",
            "Keep keys out of settings files: read them from an environment "
            "variable or a mounted secret file.",
        )
        return None
    ((kind, ref),) = source.items()
    if kind == "env":
        text = os.environ.get(ref, "")
        missing = f"the environment variable {ref!r} is not set or empty"
    elif kind == "file":
        try:
            text = Path(ref).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            text = ""
            missing = f"the file {ref!r} cannot be read ({type(exc).__name__})"
        else:
            missing = f"the file {ref!r} is empty"
    else:
        text = ref
        missing = "the inline value is empty"
    text = text.strip()
    if not text:
        found.add(
            "django_microkit.E054",
            f"{where}: {missing}.",
            "Provide the key material to the process, or remove the entry.",
        )
        return None
    return text


def _parse_material(
    text: str,
    alg: str,
    use: Literal["sign", "verify"],
    where: str,
    found: _Collector,
) -> Any:
    data = text.encode("utf-8")
    if alg.startswith("HS"):
        if data.startswith((b"-----BEGIN", b"ssh-", b"ecdsa-")):
            # The HS/RS confusion attack: a public key used as an HMAC secret.
            found.add(
                "django_microkit.E056",
                f"{where} is a PEM or SSH key, but {alg} needs a shared secret.",
                "Use a random secret for HMAC (manage.py microkit_service_key "
                "--alg HS256) or an asymmetric algorithm for this key.",
            )
            return None
        if len(data) < _HMAC_MIN_BYTES[alg]:
            found.add(
                "django_microkit.E050",
                f"{where}: the {alg} secret is {len(data)} bytes, shorter than "
                f"the {_HMAC_MIN_BYTES[alg]} bytes {alg} needs.",
                "Generate one with manage.py microkit_service_key --alg " + alg + ".",
            )
            return None
        return data
    if "\n" not in text and "\\n" in text:
        # A PEM squeezed into one line of an .env file.
        data = text.replace("\\n", "\n").encode("utf-8")
    try:
        if b"PRIVATE KEY-----" in data:
            key: Any = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        found.add(
            "django_microkit.E055",
            f"{where} is not a PEM key that can be loaded.",
            "Give an unencrypted PKCS#8 private key (-----BEGIN PRIVATE KEY-----) "
            "to sign, or a SubjectPublicKeyInfo public key (-----BEGIN PUBLIC "
            "KEY-----) to verify.",
        )
        return None
    if not _fits(key, alg):
        found.add(
            "django_microkit.E056",
            f"{where} is {_kind_of(key)}, but {alg} needs {_KEY_KIND[alg]}.",
            "Use the algorithm of the key, or the key of the algorithm.",
        )
        return None
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) and (
        key.key_size < _RSA_MIN_BITS
    ):
        found.add(
            "django_microkit.E050",
            f"{where}: the RSA key has {key.key_size} bits, fewer than "
            f"{_RSA_MIN_BITS}.",
            "Generate a new key with manage.py microkit_service_key --alg " + alg + ".",
        )
        return None
    private = isinstance(key, _PRIVATE_TYPES)
    if use == "sign" and not private:
        found.add(
            "django_microkit.E056",
            f"{where} is a public key, which cannot sign.",
            "SIGNING_KEYS holds this service's private keys; public keys go to "
            "the PEERS setting of the services it calls.",
        )
        return None
    if use == "verify" and private:
        found.add(
            "django_microkit.W052",
            f"{where} is a private key; verifying needs only the public key.",
            "Give this service the public key (manage.py microkit_service_key "
            "prints both) so the private key stays with its owner.",
        )
        return key.public_key()
    return key


def load_key(
    kid: str,
    alg: str,
    text: str,
    *,
    service: str,
    use: Literal["sign", "verify"] = "sign",
) -> Key:
    """A :class:`Key` from key material ``text``; ``ValueError`` if unusable."""
    found = _Collector()
    material = _parse_material(text, alg, use, f"key {kid!r}", found)
    if material is None:
        raise ValueError(found[0].msg)
    return Key(kid=kid, alg=alg, service=service, material=material)


def _fits(key: Any, alg: str) -> bool:
    if not isinstance(key, _KEY_TYPES[alg]):
        return False
    return alg != "ES256" or isinstance(getattr(key, "curve", None), ec.SECP256R1)


def _kind_of(key: Any) -> str:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"an EC key on curve {key.curve.name}"
    for alg, types in _KEY_TYPES.items():
        if isinstance(key, types):
            return _KEY_KIND[alg]
    return "a key of another type"


def generate_key(alg: str, *, rsa_bits: int = 3072) -> tuple[str, str | None]:
    """New key material for ``alg``: ``(secret, None)`` for HMAC, else
    ``(private PEM, public PEM)``."""
    if alg in _HMAC_MIN_BYTES:
        return secrets.token_urlsafe(_HMAC_MIN_BYTES[alg]), None
    private: Any
    if alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg in ("RS256", "PS256"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        raise ValueError(f"Unsupported algorithm: {alg!r}")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )
    return private_pem, public_pem


def new_key_id(service: str) -> str:
    """A fresh key id: ``<service>-<date>-<random>``."""
    today = datetime.now(tz=timezone.utc).strftime("%Y%m%d")
    name = re.sub(r"[^A-Za-z0-9._:-]", "-", service)[:80] or "service"
    return f"{name}-{today}-{secrets.token_hex(3)}"


@derived
def get_config() -> ServiceAuthConfig:
    """The resolved configuration, built on first use and kept until ``MICROKIT``
    changes. Raises ``ImproperlyConfigured`` if a setting has an error: the
    system checks describe every problem, this raises for the first."""
    config, issues = build_config(
        microkit_settings.SERVICE_NAME, microkit_settings.SERVICE_AUTH
    )
    errors = [issue for issue in issues if issue.is_error]
    if errors:
        raise ImproperlyConfigured(
            f"{errors[0].msg} ({errors[0].id}; run manage.py check)"
        )
    return config
