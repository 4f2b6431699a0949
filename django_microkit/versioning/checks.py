"""System checks of ``MICROKIT["VERSIONING"]`` (E034–E037, W032–W036)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from django_microkit.checks import did_you_mean, is_subclass_of, rest_framework_value
from django_microkit.conf import microkit_settings
from django_microkit.versioning.config import (
    LINK_PATTERN,
    VERSION_PATTERN,
    parse_instant,
    version_table,
)

__all__ = ["check_versioning"]

_DEPRECATION_KEYS = ("deprecated_since", "sunset", "link")


def check_versioning(**kwargs: Any) -> list[CheckMessage]:
    """``MICROKIT["VERSIONING"]`` is coherent and DRF negotiates with it."""
    config = microkit_settings.VERSIONING
    where = "MICROKIT['VERSIONING']"
    messages: list[CheckMessage] = []
    versions = config["VERSIONS"]
    known: list[str] = []
    if isinstance(versions, (list, tuple)):
        known = [v for v in versions if isinstance(v, str)]
        bad = [
            v
            for v in versions
            if not (isinstance(v, str) and VERSION_PATTERN.fullmatch(v))
        ]
        duplicates = sorted({v for v in known if known.count(v) > 1})
        if not versions or bad or duplicates:
            problem = (
                "is empty"
                if not versions
                else f"has invalid versions {bad!r}"
                if bad
                else f"repeats {duplicates!r}"
            )
            messages.append(
                Error(
                    f"{where}['VERSIONS'] {problem}.",
                    hint="List each version once, as a string of letters, digits, "
                    "'.', '_' or '-' (at most 32 characters), for example "
                    "['1', '2'].",
                    id="django_microkit.E034",
                )
            )
        default = config["DEFAULT_VERSION"]
        if isinstance(default, str) and default not in known:
            messages.append(
                Error(
                    f"{where}['DEFAULT_VERSION'] {default!r} is not in "
                    f"{where}['VERSIONS'] {list(versions)!r}.",
                    hint="Requests that name no version get DEFAULT_VERSION: make it "
                    "one of VERSIONS." + did_you_mean(default, known),
                    id="django_microkit.E035",
                )
            )
    deprecated = config["DEPRECATED"]
    if isinstance(deprecated, Mapping):
        for version, entry in deprecated.items():
            messages.extend(_check_deprecation(where, version, entry, known))
    messages.extend(_check_version_wiring())
    return messages


def _check_deprecation(
    where: str, version: Any, entry: Any, known: list[str]
) -> list[CheckMessage]:
    path = f"{where}['DEPRECATED'][{version!r}]"
    messages: list[CheckMessage] = []
    if version not in known:
        messages.append(
            Error(
                f"{path}: version {version!r} is not in {where}['VERSIONS'].",
                hint="Only a version the service serves can be deprecated."
                + did_you_mean(str(version), known),
                id="django_microkit.E036",
            )
        )
    if not isinstance(entry, Mapping):
        return [
            *messages,
            _bad_deprecation(
                f"{path} must be a dict, not {type(entry).__name__}.",
                "deprecated_since",
            ),
        ]
    for key in entry:
        if key not in _DEPRECATION_KEYS:
            messages.append(
                _bad_deprecation(
                    f"{path} has an unknown key {key!r}.",
                    "deprecated_since",
                    did_you_mean(str(key), _DEPRECATION_KEYS),
                )
            )
    dates: dict[str, Any] = {}
    for key in ("deprecated_since", "sunset"):
        if key not in entry or (key == "sunset" and entry[key] is None):
            if key == "deprecated_since":
                messages.append(
                    _bad_deprecation(
                        f"{path} has no 'deprecated_since' date.",
                        "deprecated_since",
                    )
                )
            continue
        try:
            dates[key] = parse_instant(entry[key])
        except (TypeError, ValueError):
            messages.append(
                _bad_deprecation(
                    f"{path}[{key!r}] is {entry[key]!r}, not an ISO 8601 date.",
                    key,
                )
            )
    link = entry.get("link")
    if link is not None and not (
        isinstance(link, str) and LINK_PATTERN.fullmatch(link)
    ):
        messages.append(
            _bad_deprecation(
                f"{path}['link'] is {link!r}, not an absolute http(s) URL.", "link"
            )
        )
    if (
        "sunset" in dates
        and "deprecated_since" in dates
        and dates["sunset"] < dates["deprecated_since"]
    ):
        messages.append(
            Warning(
                f"{path}: the sunset date is before the deprecation date.",
                hint="RFC 9745 asks that a version be deprecated before it is "
                "retired: move 'sunset' after 'deprecated_since'.",
                id="django_microkit.W032",
            )
        )
    default = microkit_settings.VERSIONING["DEFAULT_VERSION"]
    if (
        version == default
        and "sunset" in dates
        and version_table().sunset_passed(version)
    ):
        messages.append(
            Warning(
                f"{where}['DEFAULT_VERSION'] {default!r} is past its sunset date: "
                "every request that names no version is answered 410.",
                hint="Make a current version the default, or move the sunset date.",
                id="django_microkit.W033",
            )
        )
    return messages


def _bad_deprecation(msg: str, key: str, extra: str = "") -> Error:
    examples = {
        "deprecated_since": "'deprecated_since': '2025-01-31'",
        "sunset": "'sunset': '2026-06-30' (or None)",
        "link": "'link': 'https://developer.example.com/v1-retirement' (or None)",
    }
    return Error(
        msg,
        hint="Each deprecated version maps to a dict of 'deprecated_since' (an ISO "
        f"8601 date), 'sunset' and 'link', for example {{{examples[key]}}}." + extra,
        id="django_microkit.E037",
    )


def _check_version_wiring() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    scheme = rest_framework_value("DEFAULT_VERSIONING_CLASS")
    if not is_subclass_of(scheme, "django_microkit.versioning.BaseVersioning"):
        messages.append(
            Warning(
                f"REST_FRAMEWORK['DEFAULT_VERSIONING_CLASS'] is {scheme!r}, not a "
                "django-microkit versioning scheme: responses will not say which "
                "API version served them.",
                hint="Use django_microkit.versioning.NegotiatedVersioning (set by "
                "rest_framework_defaults()), AcceptHeaderVersioning, "
                "HeaderVersioning or URLPathVersioning.",
                id="django_microkit.W036",
            )
        )
    elif "django_microkit.versioning.VersionHeadersMiddleware" not in list(
        getattr(settings, "MIDDLEWARE", None) or []
    ):
        messages.append(
            Warning(
                "django_microkit.versioning.VersionHeadersMiddleware is not in "
                "MIDDLEWARE: responses will lack X-API-Version and the deprecation "
                "headers.",
                hint="Add 'django_microkit.versioning.VersionHeadersMiddleware' to "
                "MIDDLEWARE.",
                id="django_microkit.W034",
            )
        )
    ignored = [
        key
        for key in ("DEFAULT_VERSION", "ALLOWED_VERSIONS", "VERSION_PARAM")
        if rest_framework_value(key) is not None
    ]
    if ignored:
        messages.append(
            Warning(
                f"REST_FRAMEWORK {ignored!r} is set but django-microkit versioning "
                "reads its versions from MICROKIT['VERSIONING'].",
                hint="Move the versions to MICROKIT['VERSIONING'] ('VERSIONS', "
                "'DEFAULT_VERSION') and remove these keys from REST_FRAMEWORK.",
                id="django_microkit.W035",
            )
        )
    return messages
