"""Command line: ``python -m django_microkit startservice NAME [DIRECTORY]``."""

from __future__ import annotations

import argparse
import sys

from django_microkit.startservice import TEMPLATE_DIR, ServiceNameError, start_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_microkit", description="django-microkit tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "startservice", help="create a new service wired with django-microkit"
    )
    start.add_argument("name", help="the service's name, a lowercase identifier")
    start.add_argument(
        "directory", nargs="?", help="where to create it (default ./NAME)"
    )
    commands.add_parser(
        "templatedir", help="print the template directory for django-admin startproject"
    )
    args = parser.parse_args(argv)
    if args.command == "templatedir":
        print(TEMPLATE_DIR)
        return 0
    try:
        target = start_service(args.name, args.directory)
    except ServiceNameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Created service {args.name!r} in {target}")
    print(f"Next: cd {target} && make run")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
