"""System checks E050–E059, W050–W052 for MICROKIT["SERVICE_AUTH"]."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.core.checks import run_checks
from django.test import override_settings

from tests.service_auth_keys import (
    BILLING_PRIVATE,
    BILLING_PUBLIC,
    INVENTORY_SECRET,
    ORDERS_NEW_PUBLIC,
    TESTS_PRIVATE,
    auth_settings,
    peer,
)


def found(deploy: bool = False, **overrides: Any) -> dict[str, list[Any]]:
    """Service-auth check messages by ID under ``overrides``."""
    with override_settings(**overrides):
        messages = run_checks(include_deployment_checks=deploy)
    by_id: dict[str, list[Any]] = {}
    for message in messages:
        check_id = message.id or ""
        if check_id.startswith("django_microkit.") and check_id[-2] == "5":
            by_id.setdefault(check_id, []).append(message)
    return by_id


def with_section(**section: Any) -> dict[str, Any]:
    return auth_settings(**section)


def with_peer(*entries: Any, name: str = "orders") -> dict[str, Any]:
    microkit = auth_settings()
    microkit["SERVICE_AUTH"]["PEERS"] = {name: list(entries)}
    return microkit


def only(messages: dict[str, list[Any]], check_id: str) -> str:
    assert list(messages) == [check_id], messages
    assert len(messages[check_id]) == 1, messages[check_id]
    message = messages[check_id][0]
    assert message.hint
    return str(message.msg)


def pem(key: Any, private: bool = True) -> str:
    if private:
        return str(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )
    return str(
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def test_the_full_test_configuration_is_clean() -> None:
    assert found(MICROKIT=auth_settings()) == {}


def test_no_service_auth_is_clean() -> None:
    assert found(MICROKIT={"SERVICE_NAME": "x"}) == {}
    assert found(deploy=True, MICROKIT={"SERVICE_NAME": "x"}) == {}


def test_keys_from_environment_and_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESTS_SIGNING_KEY", TESTS_PRIVATE)
    public = tmp_path / "orders.pub"
    public.write_text(ORDERS_NEW_PUBLIC)
    microkit = with_section(
        SIGNING_KEYS=[
            {"kid": "tests-1", "alg": "EdDSA", "key": {"env": "TESTS_SIGNING_KEY"}}
        ]
    )
    microkit["SERVICE_AUTH"]["PEERS"] = {
        "orders": [{"kid": "orders-2", "alg": "EdDSA", "key": {"file": str(public)}}],
    }
    assert found(MICROKIT=microkit) == {}


def test_a_pem_on_one_line_with_escaped_newlines() -> None:
    one_line = ORDERS_NEW_PUBLIC.strip().replace("\n", "\\n")
    assert found(MICROKIT=with_peer(peer("orders-2", "EdDSA", one_line))) == {}


# --- E050 weak keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)]
)
def test_e050_short_hmac_secret(alg: str, length: int) -> None:
    messages = found(MICROKIT=with_peer(peer("orders-1", alg, "s" * length)))
    assert f"is {length} bytes, shorter than the {length + 1} bytes" in only(
        messages, "django_microkit.E050"
    )


def test_e050_small_rsa_key() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    messages = found(MICROKIT=with_peer(peer("orders-1", "RS256", pem(small, False))))
    assert "1024 bits" in only(messages, "django_microkit.E050")


# --- E051 algorithms --------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithms", "text"),
    [
        (["EdDSA", "none"], "'none', which would accept unsigned tokens"),
        (["EdDSA", "NONE"], "'none', which would accept unsigned tokens"),
        (["EdDSA", "HS1"], "the unsupported algorithm 'HS1'"),
        (["EdDSA", 256], "the unsupported algorithm 256"),
    ],
)
def test_e051_allow_list(algorithms: list[Any], text: str) -> None:
    messages = found(MICROKIT=with_section(ALGORITHMS=algorithms, PEERS={}))
    assert text in only(messages, "django_microkit.E051")


@pytest.mark.parametrize(
    ("alg", "text"),
    [
        ("none", "'none', which would accept unsigned tokens"),
        ("RS512", "unsupported algorithm 'RS512'"),
        ("HS256", "'HS256', which MICROKIT['SERVICE_AUTH']['ALGORITHMS'] does not"),
    ],
)
def test_e051_key_algorithm(alg: str, text: str) -> None:
    microkit = with_peer(peer("orders-1", alg, INVENTORY_SECRET))
    microkit["SERVICE_AUTH"]["ALGORITHMS"] = ["EdDSA"]
    assert text in only(found(MICROKIT=microkit), "django_microkit.E051")


# --- E052 times -------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "text"),
    [
        ({"TOKEN_LIFETIME": 301}, "['TOKEN_LIFETIME'] is 301, outside 1..300"),
        ({"TOKEN_LIFETIME": 0}, "['TOKEN_LIFETIME'] is 0"),
        (
            {"TOKEN_LIFETIME": 600, "MAX_TOKEN_LIFETIME": 600},
            None,
        ),
        (
            {"MAX_TOKEN_LIFETIME": 3601},
            "['MAX_TOKEN_LIFETIME'] is 3601, outside 1..3600",
        ),
        ({"MAX_TOKEN_LIFETIME": 30}, "['TOKEN_LIFETIME'] is 60, outside 1..30"),
        ({"LEEWAY": -1}, "['LEEWAY'] is -1, outside 0..60"),
        ({"LEEWAY": 61}, "['LEEWAY'] is 61"),
    ],
)
def test_e052_times(section: dict[str, int], text: str | None) -> None:
    messages = found(MICROKIT=with_section(**section))
    if text is None:
        assert messages == {}
    else:
        assert text in only(messages, "django_microkit.E052")


def test_e052_maximum_is_capped_and_checked_against_lifetime() -> None:
    messages = found(MICROKIT=with_section(MAX_TOKEN_LIFETIME=0, TOKEN_LIFETIME=5))
    texts = [m.msg for m in messages["django_microkit.E052"]]
    assert len(texts) == 2
    assert "['MAX_TOKEN_LIFETIME'] is 0" in texts[0]
    assert "['TOKEN_LIFETIME'] is 5, outside 1..1" in texts[1]


# --- E053 duplicate key ids ---------------------------------------------------


def test_e053_twice_for_one_peer() -> None:
    microkit = with_peer(
        peer("orders-1", "EdDSA", ORDERS_NEW_PUBLIC),
        peer("orders-1", "HS256", INVENTORY_SECRET),
    )
    assert "'orders-1' is used twice" in only(
        found(MICROKIT=microkit), "django_microkit.E053"
    )


def test_e053_across_peers() -> None:
    microkit = auth_settings()
    microkit["SERVICE_AUTH"]["PEERS"]["billing"].append(
        peer("orders-1", "EdDSA", ORDERS_NEW_PUBLIC)
    )
    assert "['PEERS']['billing'][1]" in only(
        found(MICROKIT=microkit), "django_microkit.E053"
    )


def test_e053_twice_in_signing_keys() -> None:
    microkit = with_section(
        SIGNING_KEYS=[
            peer("tests-1", "EdDSA", TESTS_PRIVATE),
            peer("tests-1", "EdDSA", TESTS_PRIVATE),
        ],
        SIGNING_KEY_ID="tests-1",
    )
    assert "['SIGNING_KEYS'][1]" in only(
        found(MICROKIT=microkit), "django_microkit.E053"
    )


def test_e053_signing_key_id_of_another_peer() -> None:
    microkit = with_section(SIGNING_KEYS=[peer("orders-1", "EdDSA", TESTS_PRIVATE)])
    assert "['PEERS']['orders'][0]" in only(
        found(MICROKIT=microkit), "django_microkit.E053"
    )


# --- E054 missing key material --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "text"),
    [
        (
            {"env": "MICROKIT_TEST_NOT_SET"},
            "'MICROKIT_TEST_NOT_SET' is not set or empty",
        ),
        ({"file": "/nonexistent/key.pem"}, "'/nonexistent/key.pem' cannot be read"),
        ({"value": "  \n"}, "the inline value is empty"),
    ],
)
def test_e054_missing_material(source: dict[str, str], text: str) -> None:
    entry = {"kid": "orders-1", "alg": "EdDSA", "key": source}
    assert text in only(found(MICROKIT=with_peer(entry)), "django_microkit.E054")


def test_e054_empty_file_and_empty_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("\n")
    monkeypatch.setenv("MICROKIT_TEST_EMPTY", "")
    microkit = with_peer(
        {"kid": "orders-1", "alg": "EdDSA", "key": {"file": str(empty)}},
        {"kid": "orders-2", "alg": "EdDSA", "key": {"env": "MICROKIT_TEST_EMPTY"}},
    )
    texts = [m.msg for m in found(MICROKIT=microkit)["django_microkit.E054"]]
    assert len(texts) == 2
    assert "is empty" in texts[0]
    assert "is not set or empty" in texts[1]


# --- E055 unloadable PEM ---------------------------------------------------------


def test_e055_garbage_pem() -> None:
    broken = ORDERS_NEW_PUBLIC.replace("M", "!")
    messages = found(MICROKIT=with_peer(peer("orders-1", "EdDSA", broken)))
    assert "is not a PEM key that can be loaded" in only(
        messages, "django_microkit.E055"
    )


def test_e055_not_a_pem_at_all() -> None:
    messages = found(MICROKIT=with_peer(peer("orders-1", "EdDSA", "x" * 40)))
    only(messages, "django_microkit.E055")


def test_e055_encrypted_private_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    microkit = with_section(SIGNING_KEYS=[peer("tests-1", "ES256", encrypted)])
    only(found(MICROKIT=microkit), "django_microkit.E055")


# --- E056 key does not fit its algorithm ------------------------------------------


@pytest.mark.parametrize(
    ("alg", "text", "message"),
    [
        (
            "HS256",
            BILLING_PUBLIC,
            "is a PEM or SSH key, but HS256 needs a shared secret",
        ),
        ("HS256", "ssh-ed25519 " + "A" * 68, "is a PEM or SSH key"),
        (
            "RS256",
            ORDERS_NEW_PUBLIC,
            "is an Ed25519 or Ed448 key, but RS256 needs an RSA key",
        ),
        (
            "EdDSA",
            BILLING_PUBLIC,
            "is an RSA key, but EdDSA needs an Ed25519 or Ed448 key",
        ),
        (
            "ES256",
            BILLING_PUBLIC,
            "is an RSA key, but ES256 needs an EC key on curve P-256",
        ),
    ],
)
def test_e056_key_of_another_kind(alg: str, text: str, message: str) -> None:
    messages = found(MICROKIT=with_peer(peer("orders-1", alg, text)))
    assert message in only(messages, "django_microkit.E056")


def test_e056_ec_key_on_another_curve() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    messages = found(MICROKIT=with_peer(peer("orders-1", "ES256", pem(p384, False))))
    assert "an EC key on curve secp384r1" in only(messages, "django_microkit.E056")


def test_e056_key_of_a_type_no_algorithm_uses() -> None:
    x25519 = pem(X25519PrivateKey.generate(), False)
    messages = found(MICROKIT=with_peer(peer("orders-1", "EdDSA", x25519)))
    assert "is a key of another type, but EdDSA needs an Ed25519 or Ed448 key" in (
        only(messages, "django_microkit.E056")
    )


def test_e056_public_key_cannot_sign() -> None:
    microkit = with_section(SIGNING_KEYS=[peer("tests-1", "RS256", BILLING_PUBLIC)])
    messages = found(MICROKIT=microkit)
    assert "is a public key, which cannot sign" in only(
        messages, "django_microkit.E056"
    )


# --- E057 malformed entries ------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("orders-1", "must be a dict with exactly the keys 'kid', 'alg' and 'key'"),
        ({"kid": "orders-1", "alg": "EdDSA"}, "must be a dict with exactly"),
        (
            {"kid": "orders-1", "alg": "EdDSA", "key": {"value": "x"}, "use": "sig"},
            "must be a dict with exactly",
        ),
        (
            {"kid": "", "alg": "EdDSA", "key": {"value": "x"}},
            "['kid'] must be 1 to 128",
        ),
        (
            {"kid": "a b", "alg": "EdDSA", "key": {"value": "x"}},
            "['kid'] must be 1 to 128",
        ),
        ({"kid": 5, "alg": "EdDSA", "key": {"value": "x"}}, "['kid'] must be 1 to 128"),
        ({"kid": "k", "alg": "EdDSA", "key": "-----BEGIN"}, "must be one of {'env'"),
        ({"kid": "k", "alg": "EdDSA", "key": {"vault": "x"}}, "must be one of {'env'"),
        (
            {"kid": "k", "alg": "EdDSA", "key": {"env": "A", "file": "B"}},
            "must be one of",
        ),
        ({"kid": "k", "alg": "EdDSA", "key": {"env": 5}}, "must be one of"),
    ],
)
def test_e057_malformed_entry(entry: Any, text: str) -> None:
    assert text in only(found(MICROKIT=with_peer(entry)), "django_microkit.E057")


@pytest.mark.parametrize(
    ("peers", "text"),
    [
        (
            {"orders": {"kid": "orders-1"}},
            "['PEERS']['orders'] must be a list of keys, not dict",
        ),
        ({"": []}, "['PEERS']['']: a peer is named"),
        ({5: []}, "['PEERS'][5]: a peer is named"),
    ],
)
def test_e057_malformed_peers(peers: dict[Any, Any], text: str) -> None:
    messages = found(MICROKIT=with_section(PEERS=peers))
    assert text in only(messages, "django_microkit.E057")


# --- E058 signing key selection ---------------------------------------------------


def test_e058_unknown_signing_key_id() -> None:
    messages = found(MICROKIT=with_section(SIGNING_KEY_ID="tests-9"))
    assert "is 'tests-9', which is not the kid" in only(
        messages, "django_microkit.E058"
    )


def test_e058_several_keys_and_none_chosen() -> None:
    second = peer("tests-2", "HS256", INVENTORY_SECRET)
    microkit = with_section(
        SIGNING_KEYS=[peer("tests-1", "EdDSA", TESTS_PRIVATE), second]
    )
    assert "does not say which one signs" in only(
        found(MICROKIT=microkit), "django_microkit.E058"
    )
    microkit["SERVICE_AUTH"]["SIGNING_KEY_ID"] = "tests-2"
    assert found(MICROKIT=microkit) == {}


# --- E059 / W050 / W051 replay cache ---------------------------------------------


def test_e059_replay_cache_not_configured() -> None:
    messages = found(MICROKIT=with_section(REPLAY_CACHE="replay"))
    assert "is 'replay', which is not in CACHES" in only(
        messages, "django_microkit.E059"
    )


def test_e059_dummy_replay_cache(settings: Any) -> None:
    caches = {
        **settings.CACHES,
        "replay": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    messages = found(CACHES=caches, MICROKIT=with_section(REPLAY_CACHE="replay"))
    assert "a DummyCache" in only(messages, "django_microkit.E059")


def test_replay_settings_do_not_matter_without_peers() -> None:
    microkit = with_section(PEERS={}, REPLAY_CACHE="nowhere", REPLAY_PROTECTION=False)
    assert found(MICROKIT=microkit) == {}


def test_w050_replay_protection_off() -> None:
    messages = found(MICROKIT=with_section(REPLAY_PROTECTION=False))
    assert "REPLAY_PROTECTION'] is off" in only(messages, "django_microkit.W050")
    # Without replay protection the replay cache is not looked at.
    deploy = found(deploy=True, MICROKIT=with_section(REPLAY_PROTECTION=False))
    assert list(deploy) == ["django_microkit.W050"]


def test_w051_local_memory_replay_cache_in_production() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    messages = found(deploy=True, CACHES=caches, MICROKIT=auth_settings())
    assert "a local-memory cache" in only(messages, "django_microkit.W051")
    assert found(CACHES=caches, MICROKIT=auth_settings()) == {}


def test_w051_not_for_a_shared_cache() -> None:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
        }
    }
    assert found(deploy=True, CACHES=caches, MICROKIT=auth_settings()) == {}


# --- W052 private key where a public key belongs --------------------------------


def test_w052_private_key_of_a_peer() -> None:
    microkit = with_peer(peer("billing-1", "RS256", BILLING_PRIVATE), name="billing")
    messages = found(MICROKIT=microkit)
    assert "is a private key; verifying needs only the public key" in only(
        messages, "django_microkit.W052"
    )


# --- wrong types are E003, not a crash ---------------------------------------------


def test_wrong_types_are_reported_once_by_e003() -> None:
    microkit = copy.deepcopy(auth_settings())
    microkit["SERVICE_AUTH"]["PEERS"] = ["orders"]
    microkit["SERVICE_AUTH"]["LEEWAY"] = "5"
    with override_settings(MICROKIT=microkit):
        ids = [m.id for m in run_checks() if (m.id or "").startswith("django_microkit")]
    assert ids == ["django_microkit.E003", "django_microkit.E003"]
