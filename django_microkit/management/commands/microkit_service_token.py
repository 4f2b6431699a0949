"""``manage.py microkit_service_token``: mint a service token with this
service's signing key, to try an endpoint by hand::

    curl -H "Authorization: Bearer $(python manage.py microkit_service_token \\
        catalog --scope catalog:write)" https://catalog.internal/products/
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from django_microkit.service_auth import mint_service_token

__all__ = ["Command"]


class Command(BaseCommand):
    help = (
        "Print a service token from this service (SERVICE_NAME, signed with "
        "the current signing key) for the service AUDIENCE."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("audience", help="Name of the service to call.")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            help="A scope to grant; repeat for several.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = mint_service_token(options["audience"], options["scopes"])
        except (ImproperlyConfigured, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
