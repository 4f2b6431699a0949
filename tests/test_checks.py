from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings
from django.urls import get_resolver

import django_microkit


def check_ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [
            m.id for m in run_checks() if (m.id or "").startswith("django_microkit")
        ]


def messages(**overrides: Any) -> dict[str, Any]:
    with override_settings(**overrides):
        return {
            m.id: m for m in run_checks() if (m.id or "").startswith("django_microkit")
        }


def test_test_settings_are_clean() -> None:
    assert check_ids() == []


def test_manage_py_check_passes() -> None:
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize("value", ["orders", ["SERVICE_NAME"], None])
def test_e001_microkit_not_a_dict(value: object) -> None:
    found = messages(MICROKIT=value)
    assert list(found) == ["django_microkit.E001"]
    assert type(value).__name__ in found["django_microkit.E001"].msg


def test_e002_unknown_key_suggests_the_near_one() -> None:
    found = messages(MICROKIT={"SERVICE_NAME": "x", "SERVCE_VERSION": "1"})
    assert list(found) == ["django_microkit.E002"]
    assert "'SERVCE_VERSION'" in found["django_microkit.E002"].msg
    assert "Did you mean 'SERVICE_VERSION'?" in found["django_microkit.E002"].hint


def test_e002_unknown_key_without_a_near_one() -> None:
    found = messages(MICROKIT={"SERVICE_NAME": "x", "ZZZ": 1})
    assert "Did you mean" not in found["django_microkit.E002"].hint


def test_e002_and_e003_inside_a_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_microkit import conf

    section = {"PAGE_SIZE": conf.Option(20, (int,))}
    monkeypatch.setitem(conf.DEFAULTS, "SECTION", section)
    found = messages(
        MICROKIT={"SERVICE_NAME": "x", "SECTION": {"PAGE_SIZ": 1, "PAGE_SIZE": "2"}}
    )
    assert sorted(found) == ["django_microkit.E002", "django_microkit.E003"]
    assert "MICROKIT['SECTION']['PAGE_SIZ']" in found["django_microkit.E002"].msg
    assert "'PAGE_SIZE'" in found["django_microkit.E002"].hint
    assert found["django_microkit.E003"].msg == (
        "MICROKIT['SECTION']['PAGE_SIZE'] must be int, not str."
    )
    found = messages(MICROKIT={"SERVICE_NAME": "x", "SECTION": 5})
    assert found["django_microkit.E003"].msg == (
        "MICROKIT['SECTION'] must be dict, not int."
    )


def test_e003_wrong_type() -> None:
    found = messages(MICROKIT={"SERVICE_NAME": 5})
    assert "django_microkit.E003" in found
    assert found["django_microkit.E003"].msg == (
        "MICROKIT['SERVICE_NAME'] must be str, not int."
    )


def test_w001_missing_service_name() -> None:
    assert check_ids(MICROKIT={}) == ["django_microkit.W001"]


def test_e004_rest_framework_not_installed(settings: Any) -> None:
    apps = [a for a in settings.INSTALLED_APPS if a != "rest_framework"]
    assert "django_microkit.E004" in check_ids(INSTALLED_APPS=apps)


@pytest.mark.parametrize(
    "rest_framework",
    [
        {},
        {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
        {"DEFAULT_SCHEMA_CLASS": "no.such.Class"},
    ],
)
def test_e005_rest_framework_not_wired(rest_framework: Any) -> None:
    # Load the URLconf (whose drf-spectacular views read DEFAULT_SCHEMA_CLASS when
    # imported) under the test settings, before they are broken.
    get_resolver().url_patterns  # noqa: B018
    found = messages(REST_FRAMEWORK=rest_framework)
    errors = [id_ for id_ in found if id_.startswith("django_microkit.E")]
    assert errors == ["django_microkit.E005"]
    assert "rest_framework_defaults()" in found["django_microkit.E005"].hint


def test_subclass_or_class_object_counts_as_wired() -> None:
    from django_microkit.openapi import AutoSchema

    class OwnSchema(AutoSchema):
        pass

    for value in (OwnSchema, AutoSchema):
        wired = {
            **django_microkit.rest_framework_defaults(),
            "DEFAULT_SCHEMA_CLASS": value,
        }
        assert check_ids(REST_FRAMEWORK=wired) == []
