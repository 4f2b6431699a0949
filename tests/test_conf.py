from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

import django_microkit
from django_microkit.conf import DEFAULTS, Option, microkit_settings


def test_top_level_value_comes_from_settings() -> None:
    assert microkit_settings.SERVICE_NAME == "tests"


def test_missing_key_falls_back_to_default() -> None:
    with override_settings(MICROKIT={}):
        assert microkit_settings.SERVICE_NAME == ""
        assert microkit_settings.SERVICE_VERSION == ""


def test_override_settings_refreshes_cached_values() -> None:
    assert microkit_settings.SERVICE_NAME == "tests"
    with override_settings(MICROKIT={"SERVICE_NAME": "orders"}):
        assert microkit_settings.SERVICE_NAME == "orders"
    assert microkit_settings.SERVICE_NAME == "tests"


def test_other_setting_changes_keep_the_cache() -> None:
    microkit_settings._cache["SERVICE_NAME"] = "cached"
    try:
        with override_settings(DEBUG=True):
            assert microkit_settings.SERVICE_NAME == "cached"
    finally:
        microkit_settings.reload()


@pytest.mark.parametrize("value", [None, "orders", ["SERVICE_NAME"]])
def test_malformed_microkit_falls_back_to_defaults(value: object) -> None:
    with override_settings(MICROKIT=value):
        assert microkit_settings.SERVICE_NAME == ""


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NOPE"):
        microkit_settings.NOPE  # noqa: B018
    with pytest.raises(AttributeError):
        microkit_settings._private  # noqa: B018


def test_sections_merge_user_values_over_defaults() -> None:
    spec = {"SECTION": {"A": Option(1, (int,)), "B": Option("x", (str,))}}
    merged = type(microkit_settings)(spec)
    with override_settings(MICROKIT={"SECTION": {"A": 5}}):
        assert dict(merged.SECTION) == {"A": 5, "B": "x"}
        with pytest.raises(TypeError):
            merged.SECTION["A"] = 6  # read-only
    with override_settings(MICROKIT={"SECTION": "not a dict"}):
        merged.reload()
        assert dict(merged.SECTION) == {"A": 1, "B": "x"}


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        (Option(1, (int,)), 2, True),
        (Option(1, (int,)), True, False),
        (Option(1, (int,)), "2", False),
        (Option(True, (bool,)), False, True),
        (Option(None, (str, type(None))), None, True),
        (Option(1.0, (int, float)), 3, True),
    ],
)
def test_option_accepts(option: Option, value: object, accepted: bool) -> None:
    assert option.accepts(value) is accepted


def test_option_describe_names_none() -> None:
    assert Option(None, (str, type(None))).describe() == "str or None"


def test_every_default_is_accepted_by_its_own_option() -> None:
    for value in DEFAULTS.values():
        options = value.values() if isinstance(value, dict) else [value]
        for option in options:
            assert option.accepts(option.default), option


def test_rest_framework_defaults_is_a_fresh_dict() -> None:
    first = django_microkit.rest_framework_defaults()
    first["DEFAULT_SCHEMA_CLASS"] = "changed"
    assert (
        django_microkit.rest_framework_defaults()["DEFAULT_SCHEMA_CLASS"]
        == "django_microkit.openapi.AutoSchema"
    )


def test_public_api_is_lazy_and_listed() -> None:
    assert "rest_framework_defaults" in dir(django_microkit)
    assert django_microkit.__all__ == sorted(django_microkit.__all__)
    for name in django_microkit.__all__:
        assert getattr(django_microkit, name) is not None
    with pytest.raises(AttributeError, match="nothing_here"):
        django_microkit.nothing_here  # noqa: B018


def test_type_checkers_see_every_public_name_where_it_is_defined() -> None:
    # __all__ follows from the lazy table; the TYPE_CHECKING imports repeat it
    # for mypy and editors, and must name the same objects.
    tree = ast.parse(Path(django_microkit.__file__).read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If)]
    imports = [node for node in block.body if isinstance(node, ast.ImportFrom)]
    seen = {alias.name: node.module for node in imports for alias in node.names}
    assert all(alias.asname == alias.name for node in imports for alias in node.names)
    assert sorted(["__version__", *seen]) == django_microkit.__all__
    for name, module in seen.items():
        assert module is not None
        defined = getattr(importlib.import_module(module), name)
        assert getattr(django_microkit, name) is defined


def test_typed_sections_match_the_defaults_key_for_key() -> None:
    # mypy reads the annotations; the runtime reads DEFAULTS: they must agree.
    import typing

    from django_microkit.conf import MicrokitSettings

    source = typing.get_type_hints(MicrokitSettings, include_extras=False)
    assert set(DEFAULTS) == set(source)
    for name, spec in DEFAULTS.items():
        if isinstance(spec, dict):
            assert list(spec) == list(typing.get_type_hints(source[name])), name


def test_derived_value_is_computed_once_and_dropped_on_microkit_change() -> None:
    from django_microkit.conf import derived

    calls: list[str] = []

    @derived
    def service_name() -> str:
        calls.append(microkit_settings.SERVICE_NAME)
        return microkit_settings.SERVICE_NAME.upper()

    assert service_name() == "TESTS"
    assert service_name() == "TESTS"
    with override_settings(DEBUG=True):
        assert service_name() == "TESTS"
    with override_settings(MICROKIT={"SERVICE_NAME": "orders"}):
        assert service_name() == "ORDERS"
    assert service_name() == "TESTS"
    assert calls == ["tests", "orders", "tests"]


def test_derived_value_follows_the_settings_it_names() -> None:
    from django_microkit.conf import derived

    @derived(settings=("MICROKIT", "DEBUG"))
    def debug() -> bool:
        from django.conf import settings

        return bool(settings.DEBUG)

    assert debug() is False
    with override_settings(DEBUG=True):
        assert debug() is True
    assert debug() is False
    debug.reset()
    assert debug() is False


def test_derived_value_is_built_once_under_concurrency() -> None:
    import threading

    from django_microkit.conf import derived

    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    @derived
    def slow() -> object:
        calls.append(1)
        started.set()
        release.wait(5)
        return object()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(slow())) for _ in range(4)
    ]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_fork_safe_derived_value_is_rebuilt_in_a_child() -> None:
    import os

    from django_microkit.conf import derived

    @derived(fork_safe=True)
    def owner() -> int:
        return os.getpid()

    @derived
    def inherited() -> int:
        return os.getpid()

    parent = os.getpid()
    assert owner() == inherited() == parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, f"{owner()} {inherited()}".encode())
        os._exit(0)
    os.close(write)
    child_owner, child_inherited = os.read(read, 100).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    assert int(child_owner) == pid
    assert int(child_inherited) == parent


def test_the_required_rest_framework_values_are_in_the_defaults() -> None:
    from django_microkit.conf import REST_FRAMEWORK_WIRING, rest_framework_defaults

    assert set(REST_FRAMEWORK_WIRING) == {"DEFAULT_SCHEMA_CLASS", "EXCEPTION_HANDLER"}
    assert REST_FRAMEWORK_WIRING.items() <= rest_framework_defaults().items()


def test_a_value_computed_across_a_reset_is_not_kept() -> None:
    from django_microkit.conf import derived

    seen: list[str] = []

    @derived
    def name() -> str:
        value = microkit_settings.SERVICE_NAME
        if not seen:  # the settings change while the first computation runs
            name.reset()
        seen.append(value)
        return value

    assert name() == "tests"  # the caller still gets what was computed
    assert name() == "tests"
    assert seen == ["tests", "tests"]  # but it was computed again, then kept
    assert name() == "tests"
    assert len(seen) == 2


def test_a_section_read_across_a_reload_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_microkit.conf import MicrokitSettings

    real = MicrokitSettings.user_settings
    reads: list[int] = []

    def reloading() -> Any:
        if not reads:  # the settings change while the first read runs
            microkit_settings.reload()
        reads.append(1)
        return real()

    microkit_settings.reload()
    monkeypatch.setattr(MicrokitSettings, "user_settings", staticmethod(reloading))
    assert microkit_settings.SERVICE_NAME == "tests"
    assert microkit_settings.SERVICE_NAME == "tests"
    assert microkit_settings.SERVICE_NAME == "tests"
    assert len(reads) == 2  # the first read was not kept, the second was
    monkeypatch.undo()
    microkit_settings.reload()
