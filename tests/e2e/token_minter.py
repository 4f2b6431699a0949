"""Mint service tokens with the orders service's own settings and key.

Run as a long-lived helper process under ``orders.settings``: each line read
from stdin (``<audience> [scope ...]``) is answered with one fresh token on
stdout. Tokens are single use (the receiver refuses a replayed ``jti``), so the
suite needs many, cheaply.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders.settings")
    import django

    django.setup()
    from django_microkit import mint_service_token

    for line in sys.stdin:
        audience, *scopes = line.split()
        sys.stdout.write(mint_service_token(audience, scopes) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
