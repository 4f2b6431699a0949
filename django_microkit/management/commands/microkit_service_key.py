"""``manage.py microkit_service_key``: a new service-auth key with a fresh key id,
printed in the form ``MICROKIT["SERVICE_AUTH"]`` expects."""

from __future__ import annotations

import json
import os
import re
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_microkit.conf import microkit_settings
from django_microkit.service_auth.keys import (
    KID_PATTERN,
    SUPPORTED_ALGORITHMS,
    generate_key,
    new_key_id,
)

__all__ = ["Command"]


class Command(BaseCommand):
    help = (
        "Generate a service-auth key (an HMAC secret, or an Ed25519, EC or RSA "
        "key pair) with a fresh key id, and print the settings entries for the "
        "signing service and for the services it calls."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--alg",
            choices=SUPPORTED_ALGORITHMS,
            default="EdDSA",
            help="Algorithm of the key (default: EdDSA).",
        )
        parser.add_argument(
            "--service",
            help="The service that signs with the key (default: SERVICE_NAME).",
        )
        parser.add_argument("--kid", help="Key id (default: <service>-<date>-<hex>).")
        parser.add_argument(
            "--out-dir",
            type=Path,
            help="Write the key files here (private ones readable by the owner "
            "only) instead of printing the key material.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alg: str = options["alg"]
        service = options["service"] or microkit_settings.SERVICE_NAME or "service"
        kid = options["kid"] or new_key_id(service)
        if not KID_PATTERN.fullmatch(kid):
            raise CommandError("--kid must be 1 to 128 characters of [A-Za-z0-9._:-].")
        private, public = generate_key(alg)
        env = re.sub(r"[^A-Z0-9]", "_", kid.upper())
        out_dir: Path | None = options["out_dir"]
        write = self.stdout.write
        write(f"Key id: {kid} ({alg})\n")
        if public is None:
            source = self._source(
                out_dir, f"{kid}.secret", private, 0o600, env + "_SECRET"
            )
            write(
                f"\nThe same secret goes to {service} (to sign) and to every service "
                f"it calls (to verify){self._where(source)}"
            )
            self._material(source, private)
            self._entries(service, kid, alg, source, source)
            return
        signing = self._source(
            out_dir, f"{kid}.key", private, 0o600, env + "_PRIVATE_KEY"
        )
        verifying = self._source(
            out_dir, f"{kid}.pub", public, 0o644, env + "_PUBLIC_KEY"
        )
        write(f"\n1. {service} keeps the private key secret{self._where(signing)}")
        self._material(signing, private)
        where = self._where(verifying)
        write(f"\n2. Every service {service} calls gets the public key{where}")
        self._material(verifying, public)
        self._entries(service, kid, alg, signing, verifying)

    @staticmethod
    def _source(
        out_dir: Path | None, name: str, text: str, mode: int, env: str
    ) -> dict[str, str]:
        if out_dir is None:
            return {"env": env}
        path = (out_dir / name).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise CommandError(f"{path} already exists.") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text if text.endswith("\n") else text + "\n")
        return {"file": str(path)}

    @staticmethod
    def _where(source: dict[str, str]) -> str:
        if "file" in source:
            return f", written to {source['file']}.\n"
        return f"; set the environment variable {source['env']} to:\n\n"

    def _material(self, source: dict[str, str], text: str) -> None:
        if "env" in source:
            self.stdout.write(text.rstrip("\n") + "\n")

    def _entries(
        self,
        service: str,
        kid: str,
        alg: str,
        signing: dict[str, str],
        verifying: dict[str, str],
    ) -> None:
        sign = json.dumps({"kid": kid, "alg": alg, "key": signing})
        verify = json.dumps({"kid": kid, "alg": alg, "key": verifying})
        self.stdout.write(
            f"\nOn {service}, add to MICROKIT['SERVICE_AUTH']['SIGNING_KEYS'] "
            "(and make it SIGNING_KEY_ID once every peer knows it):\n\n"
            f"    {sign},\n"
            f"\nOn every service {service} calls, add to "
            f"MICROKIT['SERVICE_AUTH']['PEERS'][{service!r}]:\n\n"
            f"    {verify},\n"
        )
