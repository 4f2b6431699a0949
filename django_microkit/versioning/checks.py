"""System checks of ``MICROKIT["VERSIONING"]`` (E034–E038, W033–W037)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage

from django_microkit.checks import (
    Issue,
    did_you_mean,
    is_subclass_of,
    rest_framework_value,
)
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
    issues: list[Issue] = []
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
            issues.append(
                Issue(
                    "django_microkit.E034",
                    f"{where}['VERSIONS'] {problem}.",
                    "List each version once, as a string of letters, digits, "
                    "'.', '_' or '-' (at most 32 characters), for example "
                    "['1', '2'].",
                )
            )
        default = config["DEFAULT_VERSION"]
        if isinstance(default, str) and default not in known:
            issues.append(
                Issue(
                    "django_microkit.E035",
                    f"{where}['DEFAULT_VERSION'] {default!r} is not in "
                    f"{where}['VERSIONS'] {list(versions)!r}.",
                    "Requests that name no version get DEFAULT_VERSION: make it "
                    "one of VERSIONS." + did_you_mean(default, known),
                )
            )
    deprecated = config["DEPRECATED"]
    if isinstance(deprecated, Mapping):
        for version, entry in deprecated.items():
            issues.extend(_check_deprecation(where, version, entry, known))
    issues.extend(_check_version_wiring())
    return [issue.message() for issue in issues]


def _check_deprecation(
    where: str, version: Any, entry: Any, known: list[str]
) -> list[Issue]:
    path = f"{where}['DEPRECATED'][{version!r}]"
    issues: list[Issue] = []
    if version not in known:
        issues.append(
            Issue(
                "django_microkit.E036",
                f"{path}: version {version!r} is not in {where}['VERSIONS'].",
                "Only a version the service serves can be deprecated."
                + did_you_mean(str(version), known),
            )
        )
    if not isinstance(entry, Mapping):
        return [
            *issues,
            _bad_deprecation(
                f"{path} must be a dict, not {type(entry).__name__}.",
                "deprecated_since",
            ),
        ]
    for key in entry:
        if key not in _DEPRECATION_KEYS:
            issues.append(
                _bad_deprecation(
                    f"{path} has an unknown key {key!r}.",
                    "deprecated_since",
                    did_you_mean(str(key), _DEPRECATION_KEYS),
                )
            )
    if "deprecated_since" not in entry:
        issues.append(
            _bad_deprecation(
                f"{path} has no 'deprecated_since' date.", "deprecated_since"
            )
        )
    dates: dict[str, Any] = {}
    for key in ("deprecated_since", "sunset"):
        if key not in entry or (key == "sunset" and entry[key] is None):
            continue
        try:
            dates[key] = parse_instant(entry[key])
        except (TypeError, ValueError):
            issues.append(
                _bad_deprecation(
                    f"{path}[{key!r}] is {entry[key]!r}, not an ISO 8601 date.",
                    key,
                )
            )
    link = entry.get("link")
    if link is not None and not (
        isinstance(link, str) and LINK_PATTERN.fullmatch(link)
    ):
        issues.append(
            _bad_deprecation(
                f"{path}['link'] is {link!r}, not an absolute http(s) URL.", "link"
            )
        )
    sunset = dates.get("sunset")
    if sunset is not None and sunset < dates.get("deprecated_since", sunset):
        issues.append(
            Issue(
                "django_microkit.E038",
                f"{path}: the sunset date is before the deprecation date.",
                "RFC 9745 §4: the Sunset date must not be earlier than the "
                "Deprecation date: move 'sunset' to or after 'deprecated_since'.",
            )
        )
    if sunset is not None and version_table().sunset_passed(version):
        default = microkit_settings.VERSIONING["DEFAULT_VERSION"]
        issues.append(
            Issue(
                "django_microkit.W033",
                f"{where}['DEFAULT_VERSION'] {default!r} is past its sunset date: "
                "every request that names no version is answered 410.",
                "Make a current version the default, or move the sunset date.",
            )
            if version == default
            else Issue(
                "django_microkit.W037",
                f"{path}: version {version!r} was retired on "
                f"{sunset.date().isoformat()}: every request for it is answered 410.",
                "Remove it from 'VERSIONS' and 'DEPRECATED' once its clients have "
                "moved, or move the sunset date.",
            )
        )
    return issues


def _bad_deprecation(msg: str, key: str, extra: str = "") -> Issue:
    examples = {
        "deprecated_since": "'deprecated_since': '2025-01-31'",
        "sunset": "'sunset': '2026-06-30' (or None)",
        "link": "'link': 'https://developer.example.com/v1-retirement' (or None)",
    }
    return Issue(
        "django_microkit.E037",
        msg,
        "Each deprecated version maps to a dict of 'deprecated_since' (an ISO "
        f"8601 date), 'sunset' and 'link', for example {{{examples[key]}}}." + extra,
    )


def _check_version_wiring() -> list[Issue]:
    issues: list[Issue] = []
    scheme = rest_framework_value("DEFAULT_VERSIONING_CLASS")
    if not is_subclass_of(scheme, "django_microkit.versioning.BaseVersioning"):
        issues.append(
            Issue(
                "django_microkit.W036",
                f"REST_FRAMEWORK['DEFAULT_VERSIONING_CLASS'] is {scheme!r}, not a "
                "django-microkit versioning scheme: responses will not say which "
                "API version served them.",
                "Use django_microkit.versioning.NegotiatedVersioning (set by "
                "rest_framework_defaults()), AcceptHeaderVersioning, "
                "HeaderVersioning or URLPathVersioning.",
            )
        )
    elif not {
        "django_microkit.versioning.VersionHeadersMiddleware",
        "django_microkit.middleware.MicrokitMiddleware",  # which does its work
    } & set(getattr(settings, "MIDDLEWARE", None) or []):
        issues.append(
            Issue(
                "django_microkit.W034",
                "django_microkit.versioning.VersionHeadersMiddleware is not in "
                "MIDDLEWARE: responses will lack X-API-Version and the deprecation "
                "headers.",
                "Add 'django_microkit.versioning.VersionHeadersMiddleware' to "
                "MIDDLEWARE.",
            )
        )
    ignored = [
        key
        for key in ("DEFAULT_VERSION", "ALLOWED_VERSIONS", "VERSION_PARAM")
        if rest_framework_value(key) is not None
    ]
    if ignored:
        issues.append(
            Issue(
                "django_microkit.W035",
                f"REST_FRAMEWORK {ignored!r} is set but django-microkit versioning "
                "reads its versions from MICROKIT['VERSIONING'].",
                "Move the versions to MICROKIT['VERSIONING'] ('VERSIONS', "
                "'DEFAULT_VERSION') and remove these keys from REST_FRAMEWORK.",
            )
        )
    return issues
