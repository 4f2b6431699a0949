from __future__ import annotations

import json
import os
import re
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_microkit.service_auth import verify_service_token
from tests.service_auth_keys import auth_settings


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def entries(output: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.strip().rstrip(","))
        for line in output.splitlines()
        if line.startswith("    {")
    ]


def pem_blocks(output: str) -> list[str]:
    return re.findall(
        r"-----BEGIN [A-Z ]+-----\n.*?\n-----END [A-Z ]+-----", output, re.S
    )


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
def test_key_pair_printed_in_settings_form(
    alg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = run(
        "microkit_service_key", "--alg", alg, "--service", "orders", "--kid", "orders-9"
    )
    sign, verify = entries(output)
    private, public = pem_blocks(output)
    assert sign == {
        "kid": "orders-9",
        "alg": alg,
        "key": {"env": "ORDERS_9_PRIVATE_KEY"},
    }
    assert verify == {
        "kid": "orders-9",
        "alg": alg,
        "key": {"env": "ORDERS_9_PUBLIC_KEY"},
    }
    assert "PRIVATE KEY" in private and "PUBLIC KEY" in public
    # Pasted as printed, the settings are valid and the key pair works.
    monkeypatch.setenv("ORDERS_9_PRIVATE_KEY", private)
    monkeypatch.setenv("ORDERS_9_PUBLIC_KEY", public)
    microkit = {
        "SERVICE_NAME": "orders",
        "SERVICE_AUTH": {"SIGNING_KEYS": [sign], "PEERS": {"orders": [verify]}},
    }
    with override_settings(MICROKIT=microkit):
        assert [
            m for m in run_checks() if (m.id or "").startswith("django_microkit")
        ] == []
        token = run("microkit_service_token", "orders", "--scope", "a", "--scope", "b")
        principal = verify_service_token(token.strip())
    assert principal.name == "orders"
    assert principal.scopes == {"a", "b"}


def test_hmac_secret_is_shared() -> None:
    output = run(
        "microkit_service_key", "--alg", "HS512", "--service", "orders", "--kid", "k"
    )
    sign, verify = entries(output)
    assert sign == verify == {"kid": "k", "alg": "HS512", "key": {"env": "K_SECRET"}}
    (secret,) = re.findall(r"^([A-Za-z0-9_-]{80,})$", output, re.M)
    assert len(secret) >= 64


def test_default_key_id_names_the_service() -> None:
    with override_settings(MICROKIT={"SERVICE_NAME": "catalog"}):
        output = run("microkit_service_key")
    assert re.search(r"Key id: catalog-\d{8}-[0-9a-f]{6} \(EdDSA\)", output)
    assert re.search(r"Key id: service-", run_without_name())


def run_without_name() -> str:
    with override_settings(MICROKIT={}):
        return run("microkit_service_key", "--alg", "HS256")


def test_key_files(tmp_path: Path) -> None:
    output = run(
        "microkit_service_key",
        "--service",
        "orders",
        "--kid",
        "orders-9",
        "--out-dir",
        str(tmp_path / "keys"),
    )
    sign, verify = entries(output)
    private = Path(sign["key"]["file"])
    public = Path(verify["key"]["file"])
    assert private == (tmp_path / "keys" / "orders-9.key").resolve()
    assert public == (tmp_path / "keys" / "orders-9.pub").resolve()
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert "PRIVATE KEY" not in output
    microkit = {
        "SERVICE_NAME": "orders",
        "SERVICE_AUTH": {"SIGNING_KEYS": [sign], "PEERS": {"orders": [verify]}},
    }
    with override_settings(MICROKIT=microkit):
        assert [
            m for m in run_checks() if (m.id or "").startswith("django_microkit")
        ] == []
    with pytest.raises(CommandError, match="already exists"):
        run(
            "microkit_service_key",
            "--kid",
            "orders-9",
            "--out-dir",
            str(tmp_path / "keys"),
        )


def test_hmac_secret_file(tmp_path: Path) -> None:
    output = run(
        "microkit_service_key",
        "--alg",
        "HS256",
        "--kid",
        "k",
        "--out-dir",
        str(tmp_path),
    )
    (entry, _) = entries(output)
    assert entry["key"] == {"file": str((tmp_path / "k.secret").resolve())}
    assert stat.S_IMODE(os.stat(tmp_path / "k.secret").st_mode) == 0o600


def test_bad_key_id() -> None:
    with pytest.raises(CommandError, match="--kid"):
        run("microkit_service_key", "--kid", "no spaces")


def test_token_command_prints_only_the_token() -> None:
    with override_settings(MICROKIT=auth_settings()):
        output = run("microkit_service_token", "billing")
    token = output.strip()
    assert output == token + "\n"
    assert jwt.get_unverified_header(token)["typ"] == "svc+jwt"
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "billing"


@pytest.mark.parametrize(
    ("microkit", "args", "message"),
    [
        ({"SERVICE_NAME": "tests"}, ("billing",), "SIGNING_KEYS"),
        (auth_settings(), ("billing", "--scope", "a b"), "Not a valid scope"),
    ],
)
def test_token_command_errors(
    microkit: dict[str, Any], args: tuple[str, ...], message: str
) -> None:
    with (
        override_settings(MICROKIT=microkit),
        pytest.raises(CommandError, match=message),
    ):
        run("microkit_service_token", *args)


def test_generate_key_refuses_unknown_algorithms() -> None:
    from django_microkit.service_auth.keys import generate_key

    with pytest.raises(ValueError, match="HS1"):
        generate_key("HS1")


def test_load_key_refuses_unusable_material() -> None:
    from django_microkit.service_auth.keys import load_key

    with pytest.raises(ValueError, match="shorter than the 32 bytes"):
        load_key("k", "HS256", "short", service="tests")
