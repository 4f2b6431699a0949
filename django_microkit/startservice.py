"""Create a new service, already wired with django-microkit, from the shipped template.

    python -m django_microkit startservice inventory [DIRECTORY]

The same template works with Django's own command:

    django-admin startproject inventory \\
        --template "$(python -m django_microkit templatedir)" \\
        -e py,toml,yml,md,cfg,ini,txt,example -n Dockerfile,Makefile -x __pycache__

(``-x`` also makes Django copy the template's ``.github`` directory.)

A service created by ``startservice`` installs django-microkit from where the
running one came from: :data:`SOURCE_FILE` names a local wheel, directory or
editable checkout, and stays empty for an install from a package index (the
version range in the service's ``pyproject.toml`` then applies).
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from importlib.metadata import distributions
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.management import call_command
from django.core.management.commands.startproject import Command as _StartProject

__all__ = [
    "SOURCE_FILE",
    "TEMPLATE_DIR",
    "ServiceNameError",
    "is_service_name",
    "source_requirement",
    "start_service",
    "validate_service_name",
]

#: The project template, usable with ``django-admin startproject --template``.
TEMPLATE_DIR = Path(__file__).resolve().parent / "service_template"

#: Files rendered with the Django template engine (all others are copied).
_TEMPLATE_EXTENSIONS = ["py", "toml", "yml", "md", "cfg", "ini", "txt", "example"]
_TEMPLATE_FILES = ["Dockerfile", "Makefile"]

#: The generated requirements file the service's ``Makefile`` installs with:
#: where django-microkit comes from when it is not the package index.
SOURCE_FILE = "requirements-microkit.txt"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ServiceNameError(ValueError):
    """The service name or the target directory cannot be used."""


class _StartServiceCommand(_StartProject):
    """Django's ``startproject``, trusting :func:`validate_service_name`.

    Django checks the name again once the target directory exists; an empty
    directory named after the service in the current directory is importable
    (as a namespace package) by then, and Django would refuse the name.
    """

    def validate_name(self, name: str, name_or_dir: str = "name") -> None:
        return None


def is_service_name(name: str) -> bool:
    """Whether ``name`` has the form of a service name: a lowercase Python
    identifier that is not a keyword (``inventory``, ``order_history``).

    The name is a Python package, and it goes into service tokens, log lines
    and metrics, where one spelling per service keeps them comparable.
    """
    return bool(_NAME.match(name)) and not keyword.iskeyword(name)


def validate_service_name(name: str, directory: Path | None = None) -> None:
    """Refuse ``name`` unless it is a lowercase Python identifier that no
    importable module uses.

    ``directory``, the empty directory the service will be written to, does not
    count as a module of that name (an empty directory on ``sys.path`` is
    importable as a namespace package).
    """
    _check_form(name)
    _check_not_importable(name, directory)


def _check_form(name: str) -> None:
    if not is_service_name(name):
        raise ServiceNameError(
            f"{name!r} is not a valid service name: use a lowercase Python identifier "
            "such as 'inventory' or 'order_history'."
        )


def _check_not_importable(name: str, directory: Path | None) -> None:
    spec = find_spec(name)
    if spec is None:
        return
    locations = [Path(location) for location in spec.submodule_search_locations or ()]
    if spec.origin is None and directory is not None and locations == [directory]:
        return
    where = spec.origin or ", ".join(str(location) for location in locations)
    raise ServiceNameError(
        f"{name!r} is already importable as a Python module ({where}); the "
        "service would shadow it or be shadowed by it. Choose another name."
    )


def start_service(name: str, directory: str | Path | None = None) -> Path:
    """Generate the service ``name`` into ``directory`` (default ``./name``).

    Refuses an invalid name or an existing non-empty directory before writing
    anything, so nothing is ever overwritten. Returns the directory of the new
    service.
    """
    _check_form(name)
    target = Path(directory if directory is not None else name).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ServiceNameError(
            f"{target} already exists and is not an empty directory; nothing was "
            "written. Choose a new directory."
        )
    _check_not_importable(name, target)
    target.mkdir(parents=True, exist_ok=True)
    # The command object itself: looking "startproject" up by name would need
    # Django's app registry, which is not set up outside a project. The command
    # configures the bare settings it needs to render the files.
    call_command(
        _StartServiceCommand(),
        name,
        str(target),
        template=str(TEMPLATE_DIR),
        extensions=_TEMPLATE_EXTENSIONS,
        files=_TEMPLATE_FILES,
        # Caches that tools may leave in the template directory.
        exclude=["__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"],
        verbosity=0,
    )
    requirement = source_requirement(_direct_url())
    if requirement is not None:
        with (target / SOURCE_FILE).open("a") as requirements:
            requirements.write(f"{requirement}\n")
    return target


def source_requirement(direct_url: Mapping[str, Any] | None) -> str | None:
    """The pip requirement that installs django-microkit from where an install
    described by ``direct_url`` (its ``direct_url.json``, PEP 610) came from.

    ``None`` for an install from a package index, which has no such file: the
    generated ``pyproject.toml``'s version range finds the same releases.
    ``-e /path`` for an editable checkout, ``django-microkit @ <url>`` for a
    local wheel or directory, an archive URL or a VCS commit.
    """
    if direct_url is None:
        return None
    url = str(direct_url["url"])
    if direct_url.get("dir_info", {}).get("editable"):
        return f"-e {unquote(urlsplit(url).path)}"
    vcs = direct_url.get("vcs_info")
    if vcs is not None:
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    return f"django-microkit @ {url}"


def _direct_url() -> dict[str, Any] | None:
    """This django-microkit's ``direct_url.json``: ``None`` from an index, or
    when the code runs from a checkout that was never installed."""
    found = next(iter(distributions(name="django-microkit")), None)
    text = None if found is None else found.read_text("direct_url.json")
    return None if text is None else dict(json.loads(text))
