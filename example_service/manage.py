#!/usr/bin/env python
"""Run a management command for one example service.

python example_service/manage.py runserver --settings=catalog.settings
DJANGO_SETTINGS_MODULE=orders.settings python example_service/manage.py migrate
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalog.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
