"""The docs are kept honest: every setting and every check is documented."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from django.core.checks import registry

from django_microkit.conf import DEFAULTS, Option

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHECKS_SOURCE = Path(__file__).resolve().parent.parent / "django_microkit"


def _literal(cell: str) -> Any:
    """The first `code` literal of a table cell, as a Python value."""
    match = re.search(r"`([^`]*)`", cell)
    assert match, cell
    return ast.literal_eval(match.group(1))


def _same(documented: Any, default: Any) -> bool:
    """Equal, reading a documented list as the tuple a default may be."""
    if isinstance(default, tuple) and isinstance(documented, list):
        documented = tuple(documented)
    return bool(documented == default) and type(documented) is type(default)


def _documented_defaults(chunk: str) -> dict[str, list[str]]:
    """Each setting named in a table row of ``chunk``, with its default cells."""
    rows: dict[str, list[str]] = {}
    for line in chunk.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = re.fullmatch(r"`([A-Z_]+)`", cells[0])
        if key and len(cells) >= 3:
            rows.setdefault(key.group(1), []).append(cells[2])
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "settings.md").read_text()
    chunks = text.split("\n## ")
    for name, value in DEFAULTS.items():
        if isinstance(value, Option):
            where = [c for c in chunks if f"`{name}`" in c]
            rows = {k: v for c in where for k, v in _documented_defaults(c).items()}
            cells = rows.get(name) or re.findall(
                rf"`{name}`[^\n]*?default (`[^`]*`)", text
            )
            assert any(_same(_literal(c), value.default) for c in cells), name
            continue
        (chunk,) = [
            c for c in chunks if f"`{name}`" in c.splitlines()[0] or f'["{name}"]' in c
        ][:1]
        rows = _documented_defaults(chunk)
        for key, option in value.items():
            assert any(
                _same(_literal(cell), option.default) for cell in rows.get(key, [])
            ), f"{name}.{key}: {rows.get(key)} != {option.default!r}"


def test_every_check_id_is_documented() -> None:
    ids = set()
    for path in CHECKS_SOURCE.rglob("*.py"):
        ids.update(re.findall(r'"(django_microkit\.[EW]\d{3})"', path.read_text()))
    documented = set(
        re.findall(r"`(django_microkit\.[EW]\d{3})`", (DOCS / "checks.md").read_text())
    )
    assert ids, "no check IDs found"
    assert ids == documented


def test_checks_are_registered() -> None:
    names = {check.__name__ for check in registry.registry.get_checks()}
    assert {"check_settings", "check_rest_framework"} <= names


def test_defaults_are_options_or_sections() -> None:
    for value in DEFAULTS.values():
        assert isinstance(value, Option) or all(
            isinstance(option, Option) for option in value.values()
        )


def library_modules() -> list[ModuleType]:
    """Every module of the library (not its migrations, management commands or
    the service template, which are not imported by name)."""
    modules = []
    for path in sorted(CHECKS_SOURCE.rglob("*.py")):
        parts = path.relative_to(CHECKS_SOURCE.parent).with_suffix("").parts
        if {"migrations", "commands", "service_template", "__main__"} & set(parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(importlib.import_module(".".join(parts)))
    return modules
