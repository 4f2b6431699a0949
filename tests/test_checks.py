from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.checks import CheckMessage, Tags, run_checks
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.checks.registry import registry
from django.core.management import call_command
from django.test import override_settings
from django.urls import get_resolver
from django.utils.module_loading import import_string

import django_microkit
from django_microkit.checks import _CONCERN_CHECKS, Issue, register_checks


def check_ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [
            m.id for m in run_checks() if m.id and m.id.startswith("django_microkit")
        ]


def messages(**overrides: Any) -> dict[str, Any]:
    with override_settings(**overrides):
        return {
            m.id: m for m in run_checks() if m.id and m.id.startswith("django_microkit")
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


# -- Registration -------------------------------------------------------------


def _registered_paths() -> list[str]:
    return [path for path, _tag, _deploy in _CONCERN_CHECKS]


def test_each_check_is_registered_once() -> None:
    paths = _registered_paths()
    assert len(paths) == len(set(paths))


def test_every_entry_is_a_check_function_with_a_tag() -> None:
    for path, tag, deploy in _CONCERN_CHECKS:
        function = import_string(path)
        assert inspect.isfunction(function), path
        assert tag in vars(Tags).values(), path
        assert isinstance(deploy, bool)
        assert deploy == path.endswith("_deploy"), path
        assert function.__name__.startswith("check_"), path
        parameters = list(inspect.signature(function).parameters.values())
        assert [p.kind for p in parameters] == [inspect.Parameter.VAR_KEYWORD]


def test_every_check_function_of_the_package_is_registered() -> None:
    from tests.test_docs import library_modules

    found = {
        f"{module.__name__}.{name}"
        for module in library_modules()
        for name, value in vars(module).items()
        if name.startswith("check_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
    }
    assert found, "no check_* functions found"
    unregistered = found - set(_registered_paths())
    assert not unregistered, f"not in _CONCERN_CHECKS: {sorted(unregistered)}"


def _dotted(check: Any) -> str:
    return f"{check.__module__}.{check.__name__}"


def test_registered_checks_carry_the_name_of_their_function() -> None:
    names = {
        _dotted(check) for check in registry.get_checks(include_deployment_checks=True)
    }
    assert set(_registered_paths()) <= names


def test_registering_again_adds_nothing() -> None:
    before = set(registry.get_checks(include_deployment_checks=True))
    register_checks()
    apps.get_app_config("django_microkit").ready()
    assert set(registry.get_checks(include_deployment_checks=True)) == before


def test_deploy_checks_run_only_with_deploy() -> None:
    deploy_only = {
        _dotted(check)
        for check in registry.get_checks(include_deployment_checks=True)
        if check not in registry.get_checks()
        and check.__module__.startswith("django_microkit")
    }
    assert deploy_only == {path for path, _tag, deploy in _CONCERN_CHECKS if deploy}


@pytest.mark.parametrize(
    ("id_", "level"),
    [("django_microkit.E050", CheckError), ("django_microkit.W050", CheckWarning)],
)
def test_an_issue_is_a_check_message_of_the_level_its_id_says(
    id_: str, level: type[CheckMessage]
) -> None:
    issue = Issue(id_, "MICROKIT['X'] is wrong.", "Fix it.")
    assert issue.is_error is (level is CheckError)
    message = issue.message()
    assert type(message) is level
    assert (message.id, message.msg, message.hint) == (id_, issue.msg, issue.hint)


def test_start_up_imports_no_concern_module() -> None:
    # Registering the checks must not import what they check (DRF views,
    # PyJWT, the client...): that waits until the checks run.
    code = (
        "import sys, django; django.setup(); "
        "print(sorted(m for m in sys.modules if m.startswith('django_microkit')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split("\n")[0] == str(
        [
            "django_microkit",
            "django_microkit.apps",
            "django_microkit.checks",
            "django_microkit.conf",
            "django_microkit.events",
            "django_microkit.events.apps",
            "django_microkit.events.models",
        ]
    )


@pytest.mark.parametrize("name", ["Orders", "order-history", "orders api", "class"])
def test_e006_service_name_is_not_a_service_name(name: str) -> None:
    found = messages(MICROKIT={"SERVICE_NAME": name})
    assert list(found) == ["django_microkit.E006"]
    assert found["django_microkit.E006"].msg == (
        f"MICROKIT['SERVICE_NAME'] is {name!r}, which is not a valid service name."
    )
    assert "'order_history'" in found["django_microkit.E006"].hint


@pytest.mark.parametrize("name", ["orders", "order_history", "x2"])
def test_e006_valid_service_names(name: str) -> None:
    assert check_ids(MICROKIT={"SERVICE_NAME": name}) == []


DRF_JSON = "rest_framework.parsers.JSONParser"
MICROKIT_JSON = "django_microkit.parsers.JSONParser"


@pytest.mark.parametrize(
    ("parsers", "expected"),
    [
        ([DRF_JSON, "rest_framework.parsers.FormParser"], ["django_microkit.W002"]),
        ((DRF_JSON,), ["django_microkit.W002"]),
        ([import_string(DRF_JSON)], ["django_microkit.W002"]),
        ([MICROKIT_JSON, "rest_framework.parsers.FormParser"], []),
        ([MICROKIT_JSON, DRF_JSON], []),
        # DRF parses with the first parser that accepts the media type.
        ([DRF_JSON, MICROKIT_JSON], ["django_microkit.W002"]),
        (
            ["rest_framework.parsers.FormParser", DRF_JSON, MICROKIT_JSON],
            ["django_microkit.W002"],
        ),
        (
            [import_string(DRF_JSON), import_string(MICROKIT_JSON)],
            ["django_microkit.W002"],
        ),
        ([MICROKIT_JSON, DRF_JSON, MICROKIT_JSON], []),
        ([import_string(MICROKIT_JSON), DRF_JSON], []),
        (["rest_framework.parsers.FormParser"], []),
        ([], []),
    ],
)
def test_w002_drf_json_parser_without_the_hardened_one_first(
    parsers: Any, expected: list[str]
) -> None:
    rest_framework = {
        **django_microkit.rest_framework_defaults(),
        "DEFAULT_PARSER_CLASSES": parsers,
    }
    found = messages(REST_FRAMEWORK=rest_framework)
    assert list(found) == expected
    if expected:
        assert MICROKIT_JSON in found["django_microkit.W002"].hint


def test_w002_says_which_parser_to_move() -> None:
    rest_framework = {
        **django_microkit.rest_framework_defaults(),
        "DEFAULT_PARSER_CLASSES": [import_string(DRF_JSON), MICROKIT_JSON],
    }
    warning = messages(REST_FRAMEWORK=rest_framework)["django_microkit.W002"]
    assert warning.msg == (
        "REST_FRAMEWORK['DEFAULT_PARSER_CLASSES'] lists DRF's "
        f"{DRF_JSON!r} before django-microkit's {MICROKIT_JSON!r}, so DRF's "
        "parses JSON."
    )
    assert warning.hint == (
        f"Move {MICROKIT_JSON!r} before {DRF_JSON!r}: DRF's answers 500 to JSON "
        "nested too deeply to decode, django-microkit's a 400 problem document."
    )
