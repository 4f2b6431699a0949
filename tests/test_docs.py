"""The docs are kept honest: every setting and every check is documented."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.checks import registry

from django_microkit.conf import DEFAULTS, Option

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHECKS_SOURCE = Path(__file__).resolve().parent.parent / "django_microkit"


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "settings.md").read_text()
    for name, value in DEFAULTS.items():
        assert f"`{name}`" in text, name
        if isinstance(value, dict):
            for key in value:
                assert f"`{key}`" in text, f"{name}.{key}"


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
