"""The versions a service serves, read from ``MICROKIT["VERSIONING"]``.

The settings are parsed once into a table (versions, default, the headers of
each deprecated version, sunset instants) and the table is dropped when
``MICROKIT`` changes, so a request never re-parses dates or rebuilds headers.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.http import http_date

from django_microkit.conf import microkit_settings

__all__: list[str] = []

#: What a version string may look like: it travels in headers, media type
#: parameters and URL paths.
_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def _parse_instant(value: Any) -> datetime.datetime:
    """An aware datetime from a date, a datetime or an ISO 8601 string.

    A date means midnight UTC at its start; a datetime without an offset is UTC.
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


@dataclass(frozen=True)
class _Deprecation:
    sunset: datetime.datetime | None
    headers: tuple[tuple[str, str], ...]
    link: str | None


@dataclass(frozen=True)
class _Table:
    versions: tuple[str, ...]
    default: str
    deprecated: Mapping[str, _Deprecation]
    enforce_sunset: bool

    def sunset_passed(self, version: str) -> bool:
        deprecation = self.deprecated.get(version)
        if deprecation is None or deprecation.sunset is None or not self.enforce_sunset:
            return False
        return datetime.datetime.now(datetime.timezone.utc) >= deprecation.sunset

    def active(self, versions: Sequence[str]) -> list[str]:
        return [v for v in versions if not self.sunset_passed(v)]


_tables: dict[str, _Table] = {}


def _table() -> _Table:
    try:
        return _tables["table"]
    except KeyError:
        table = _tables["table"] = _build_table(microkit_settings.VERSIONING)
        return table


@receiver(setting_changed)
def _forget_table(*, setting: str, **kwargs: Any) -> None:
    if setting == "MICROKIT":
        _tables.clear()


def _build_table(config: Mapping[str, Any]) -> _Table:
    deprecated: dict[str, _Deprecation] = {}
    entries = config["DEPRECATED"]
    for version, entry in entries.items() if isinstance(entries, Mapping) else ():
        if isinstance(entry, Mapping):
            deprecated[str(version)] = _deprecation(entry)
    return _Table(
        versions=tuple(str(v) for v in config["VERSIONS"]),
        default=str(config["DEFAULT_VERSION"]),
        deprecated=deprecated,
        enforce_sunset=bool(config["ENFORCE_SUNSET"]),
    )


def _deprecation(entry: Mapping[str, Any]) -> _Deprecation:
    """The response headers of one deprecated version.

    ``system checks`` report malformed entries; here an unreadable date or
    link is left out rather than failing every request.
    """
    headers: list[tuple[str, str]] = []
    sunset = None
    try:
        since = _parse_instant(entry.get("deprecated_since"))
    except (TypeError, ValueError):
        pass
    else:
        # RFC 9745: an sf-date, "@" followed by seconds since the epoch.
        headers.append(("Deprecation", f"@{int(since.timestamp())}"))
    if entry.get("sunset") is not None:
        try:
            sunset = _parse_instant(entry["sunset"])
        except (TypeError, ValueError):
            pass
        else:
            # RFC 8594: an HTTP-date.
            headers.append(("Sunset", http_date(sunset.timestamp())))
    link = entry.get("link")
    if not (isinstance(link, str) and _valid_link(link)):
        link = None
    return _Deprecation(sunset, tuple(headers), link)


_LINK_TARGET = re.compile(r"https?://[^\s<>\"]+")


def _valid_link(url: str) -> bool:
    return _LINK_TARGET.fullmatch(url) is not None
