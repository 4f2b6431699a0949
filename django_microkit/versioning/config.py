"""The versions a service serves, read from ``MICROKIT["VERSIONING"]``.

The settings are parsed once into a :class:`VersionTable` (versions, default,
the headers of each deprecated version, sunset instants), dropped when
``MICROKIT`` changes, so a request never re-parses dates or rebuilds headers.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.http import http_date

from django_microkit.conf import derived, microkit_settings

__all__ = [
    "LINK_PATTERN",
    "VERSION_PATTERN",
    "Deprecation",
    "VersionTable",
    "parse_instant",
    "version_table",
]

#: What a version string may look like: it travels in headers, media type
#: parameters and URL paths.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")

#: What a deprecation ``link`` may be: an absolute http(s) URL that fits in a
#: ``Link`` header's ``<…>`` unescaped.
LINK_PATTERN = re.compile(r"https?://[^\s<>\"]+")


def parse_instant(value: Any) -> datetime.datetime:
    """An aware datetime from a date, a datetime or an ISO 8601 string.

    A date means midnight UTC at its start; a datetime without an offset is UTC.
    Raises ``TypeError`` or ``ValueError`` for anything else.
    """
    if isinstance(value, str):
        text = value.strip()
        value = datetime.datetime.fromisoformat(
            text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        )
    if isinstance(value, datetime.datetime):
        instant = value
    elif isinstance(value, datetime.date):
        instant = datetime.datetime.combine(value, datetime.time.min)
    else:
        raise TypeError(f"expected a date, not {type(value).__name__}")
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=datetime.timezone.utc)
    return instant


def _instant(value: Any) -> datetime.datetime | None:
    try:
        return parse_instant(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Deprecation:
    """What a deprecated version's responses say: the ``Deprecation`` and
    ``Sunset`` headers, the ``rel="deprecation"`` link, and when it retires."""

    sunset: datetime.datetime | None
    headers: tuple[tuple[str, str], ...]
    link: str | None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Deprecation:
        """The deprecation of one ``DEPRECATED`` entry.

        System checks report malformed entries; here an unreadable date or
        link is left out rather than failing every request.
        """
        since, sunset = (_instant(entry.get(k)) for k in ("deprecated_since", "sunset"))
        headers: list[tuple[str, str]] = []
        if since is not None:
            # RFC 9745: an sf-date, "@" followed by seconds since the epoch.
            headers.append(("Deprecation", f"@{int(since.timestamp())}"))
        if sunset is not None:
            # RFC 8594: an HTTP-date.
            headers.append(("Sunset", http_date(sunset.timestamp())))
        link = entry.get("link")
        if not (isinstance(link, str) and LINK_PATTERN.fullmatch(link)):
            link = None
        return cls(sunset, tuple(headers), link)


@dataclass(frozen=True)
class VersionTable:
    """``MICROKIT["VERSIONING"]`` parsed: what every scheme negotiates with."""

    versions: tuple[str, ...]
    default: str
    deprecated: Mapping[str, Deprecation]
    enforce_sunset: bool

    def sunset_passed(self, version: str) -> bool:
        """Whether ``version`` is retired: past its sunset, with ``ENFORCE_SUNSET``."""
        deprecation = self.deprecated.get(version)
        if deprecation is None or deprecation.sunset is None or not self.enforce_sunset:
            return False
        return datetime.datetime.now(datetime.timezone.utc) >= deprecation.sunset

    def next_sunset(self) -> datetime.datetime | None:
        """When the next version retires (with ``ENFORCE_SUNSET``), if one will."""
        now = datetime.datetime.now(datetime.timezone.utc)
        upcoming = [
            d.sunset
            for d in self.deprecated.values()
            if self.enforce_sunset and d.sunset is not None and d.sunset > now
        ]
        return min(upcoming, default=None)

    def active(self, versions: Sequence[str]) -> list[str]:
        """``versions`` without the retired ones."""
        return [v for v in versions if not self.sunset_passed(v)]


@derived
def version_table() -> VersionTable:
    """The :class:`VersionTable` of the current settings (parsed once)."""
    config = microkit_settings.VERSIONING
    entries = config["DEPRECATED"]
    return VersionTable(
        versions=tuple(str(v) for v in config["VERSIONS"]),
        default=str(config["DEFAULT_VERSION"]),
        deprecated={
            str(version): Deprecation.from_entry(entry)
            for version, entry in (
                entries.items() if isinstance(entries, Mapping) else ()
            )
            if isinstance(entry, Mapping)
        },
        enforce_sunset=bool(config["ENFORCE_SUNSET"]),
    )
