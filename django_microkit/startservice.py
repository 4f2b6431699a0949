"""Create a new service, already wired with django-microkit, from the shipped template.

    python -m django_microkit startservice inventory [DIRECTORY]

The same template works with Django's own command:

    django-admin startproject inventory --template "$(python -m django_microkit templatedir)" \\
        -e py,toml,yml,md,cfg,ini,txt,example -n Dockerfile,Makefile -x __pycache__
"""

from __future__ import annotations

import keyword
import re
from importlib.util import find_spec
from pathlib import Path

__all__ = ["TEMPLATE_DIR", "ServiceNameError", "start_service"]

#: The project template, usable with ``django-admin startproject --template``.
TEMPLATE_DIR = Path(__file__).resolve().parent / "service_template"

#: Files rendered with the Django template engine (all others are copied).
TEMPLATE_EXTENSIONS = ["py", "toml", "yml", "md", "cfg", "ini", "txt", "example"]
TEMPLATE_FILES = ["Dockerfile", "Makefile"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ServiceNameError(ValueError):
    """The service name or the target directory cannot be used."""


def validate_service_name(name: str) -> None:
    """A service name is a lowercase Python identifier that no importable module uses."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ServiceNameError(
            f"{name!r} is not a valid service name: use a lowercase Python identifier "
            "such as 'inventory' or 'order_history'."
        )
    if find_spec(name) is not None:
        raise ServiceNameError(
            f"{name!r} is the name of an installed Python module; importing the "
            "service would shadow it or be shadowed by it. Choose another name."
        )


def start_service(name: str, directory: str | Path | None = None) -> Path:
    """Generate the service ``name`` into ``directory`` (default ``./name``).

    Refuses an existing non-empty directory before writing anything, so nothing
    is ever overwritten. Returns the directory of the new service.
    """
    from django.core.management import call_command
    from django.core.management.commands.startproject import Command

    validate_service_name(name)
    target = Path(directory if directory is not None else name).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ServiceNameError(
            f"{target} already exists and is not empty: choose a new directory."
        )
    target.mkdir(parents=True, exist_ok=True)
    # The command object itself: looking "startproject" up by name would need
    # Django's app registry, which is not set up outside a project. The command
    # configures the bare settings it needs to render the files.
    call_command(
        Command(),
        name,
        str(target),
        template=str(TEMPLATE_DIR),
        extensions=TEMPLATE_EXTENSIONS,
        files=TEMPLATE_FILES,
        exclude=["__pycache__"],
        verbosity=0,
    )
    return target
