"""API versions: how a client asks for one, and how a service retires one.

A client names the version it wants with an ``Accept`` parameter
(``Accept: application/json; version=2``), an ``X-API-Version`` header or the
URL path (``/api/v2/…``); asking for nothing means ``DEFAULT_VERSION``. DRF sees
the result as ``request.version``. :class:`VersionHeadersMiddleware` then says
on every response which version served it, and for a deprecated version adds
``Deprecation`` (RFC 9745), ``Sunset`` (RFC 8594) and a ``Link`` with
``rel="deprecation"``. After its sunset date a version answers 410.

Versions are configured once, in ``MICROKIT["VERSIONING"]``, and read at call
time; the parsed table is cached until ``MICROKIT`` changes.
"""

from __future__ import annotations

from django_microkit.versioning.middleware import (
    VERSION_HEADER,
    VersionHeadersMiddleware,
)
from django_microkit.versioning.schemes import (
    AcceptHeaderVersioning,
    BaseVersioning,
    HeaderVersioning,
    NegotiatedVersioning,
    URLPathVersioning,
    resolve_version,
)
from django_microkit.versioning.views import VersionedSerializerMixin

__all__ = [
    "VERSION_HEADER",
    "AcceptHeaderVersioning",
    "BaseVersioning",
    "HeaderVersioning",
    "NegotiatedVersioning",
    "URLPathVersioning",
    "VersionHeadersMiddleware",
    "VersionedSerializerMixin",
    "resolve_version",
]
