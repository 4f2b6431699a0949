"""How a client asks for a version: the DRF versioning schemes.

Each scheme reads the version from its channels (the ``Accept`` parameter, the
``X-API-Version`` header, the URL path), falls back to ``DEFAULT_VERSION``,
refuses unknown and retired versions with a problem, and leaves the chosen
version on the request for ``VersionHeadersMiddleware`` to announce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rest_framework import exceptions
from rest_framework import versioning as drf_versioning
from rest_framework.request import Request

from django_microkit.errors.problem import ErrorItem, Problem
from django_microkit.versioning.config import version_table
from django_microkit.versioning.middleware import VERSION_HEADER, announce_version

__all__ = [
    "SOURCE_ACCEPT",
    "SOURCE_HEADER",
    "SOURCE_URL",
    "AcceptHeaderVersioning",
    "BaseVersioning",
    "HeaderVersioning",
    "NegotiatedVersioning",
    "URLPathVersioning",
    "resolve_version",
]

_VERSION_META = "HTTP_X_API_VERSION"

#: Where a scheme may read the version (its ``sources``): the ``version``
#: parameter of the ``Accept`` media type, the ``X-API-Version`` header, the
#: ``version`` argument of the URL pattern.
SOURCE_ACCEPT = "accept"
SOURCE_HEADER = "header"
SOURCE_URL = "url"


def _accept_version(media_type: str) -> str | None:
    """The ``version`` parameter of a negotiated media type, if any."""
    if ";" not in media_type:
        return None
    for parameter in media_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "version":
            return value.strip().strip('"')
    return None


class _SettingDescriptor:
    """A class attribute read from ``MICROKIT["VERSIONING"]`` when accessed.

    DRF and drf-spectacular read ``default_version`` and ``allowed_versions``
    off the class; a subclass may replace either with a plain value.
    """

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return getattr(version_table(), self.field)


class BaseVersioning(drf_versioning.BaseVersioning):
    """What the four schemes share: the default, the errors, the announcement.

    A scheme of the service's own subclasses it and names its ``sources``;
    ``determine_version`` refuses unknown and retired versions with a problem
    and leaves the chosen one for :class:`VersionHeadersMiddleware`.
    """

    default_version = _SettingDescriptor("default")
    allowed_versions = _SettingDescriptor("versions")
    version_param = "version"
    #: Where this scheme looks for the version (``SOURCE_*``).
    sources: tuple[str, ...] = ()
    #: The request headers the response varies on (derived from ``sources``).
    vary: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = ((SOURCE_ACCEPT, "Accept"), (SOURCE_HEADER, VERSION_HEADER))
        cls.vary = tuple(name for source, name in names if source in cls.sources)

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> str:
        view = (getattr(request, "parser_context", None) or {}).get("view")
        # drf-spectacular marks the views it documents and puts the version it
        # documents into the negotiated media type, whatever the scheme.
        documenting = bool(getattr(view, "swagger_fake_view", False))
        requested = self._requested(request, kwargs, documenting)
        if not documenting:
            announce_version(request, None, self.vary)
        allowed: Sequence[str] = self.allowed_versions or ()
        if not requested:
            version = str(self.default_version)
        else:
            if len({value for value, _ in requested}) > 1:
                raise _conflict(requested)
            version, source = requested[0]
            if version not in allowed:
                if documenting:
                    raise exceptions.NotAcceptable()
                raise _unsupported(source, allowed)
        if documenting:
            return version
        announce_version(request, version)
        if version_table().sunset_passed(version):
            raise _sunset(version, allowed)
        return version

    def _requested(
        self, request: Request, kwargs: Mapping[str, Any], documenting: bool
    ) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        sources = self.sources
        # drf-spectacular sets the argument on every route it documents; a
        # route without it in its path only ever serves the default.
        if (
            SOURCE_URL in sources
            and kwargs.get(self.version_param) is not None
            and (not documenting or f"{{{self.version_param}}}" in request.path)
        ):
            found.append((str(kwargs[self.version_param]), SOURCE_URL))
        if SOURCE_ACCEPT in sources or documenting:
            media_type = getattr(request, "accepted_media_type", "") or ""
            value = _accept_version(media_type)
            if value is not None:
                found.append((value, SOURCE_ACCEPT))
        if SOURCE_HEADER in sources and not documenting:
            # The Django request's META: DRF's Request would look it up there.
            header = getattr(request, "_request", request).META.get(_VERSION_META)
            if header is not None:
                found.append((header.strip(), SOURCE_HEADER))
        return found


def _error_item(source: str, detail: str, code: str) -> ErrorItem:
    item: ErrorItem = {"code": code, "detail": detail}
    if source == SOURCE_ACCEPT:
        item["header"] = "Accept"
    elif source == SOURCE_HEADER:
        item["header"] = VERSION_HEADER
    elif source == "query":
        item["parameter"] = "version"
    return item


def _unsupported(source: str, allowed: Sequence[str]) -> Problem:
    supported = version_table().active(allowed)
    detail = "This API version is not supported. Supported versions: " + (
        ", ".join(supported) + "."
    )
    return Problem(
        406 if source == SOURCE_ACCEPT else 400,
        "unsupported_version",
        detail=detail,
        errors=[_error_item(source, detail, "unsupported_version")],
        supported_versions=supported,
    )


def _conflict(requested: list[tuple[str, str]]) -> Problem:
    detail = "The request names more than one API version."
    return Problem(
        400,
        "version_conflict",
        detail=detail,
        errors=[
            _error_item(source, detail, "version_conflict") for _, source in requested
        ],
    )


def _sunset(version: str, allowed: Sequence[str]) -> Problem:
    sunset = version_table().deprecated[version].sunset
    assert sunset is not None
    return Problem(
        410,
        "version_sunset",
        detail=f"API version {version} was retired on {sunset.date().isoformat()}.",
        supported_versions=version_table().active(allowed),
    )


def resolve_version(requested: str | None) -> str:
    """``requested`` if it is a supported, not retired version; the default for
    ``None``; a 400 ``unsupported_version`` problem otherwise.

    For code outside DRF's negotiation, such as the schema view's ``?version=``.
    """
    table = version_table()
    if requested is None:
        return table.default
    if requested not in table.versions or table.sunset_passed(requested):
        raise _unsupported("query", table.versions)
    return requested


class AcceptHeaderVersioning(BaseVersioning, drf_versioning.AcceptHeaderVersioning):
    """The version is a parameter of the ``Accept`` media type.

    ``GET /products/`` with ``Accept: application/json; version=2``. An unknown
    version is a 406 ``unsupported_version`` problem.
    """

    sources = (SOURCE_ACCEPT,)


class HeaderVersioning(BaseVersioning, drf_versioning.AcceptHeaderVersioning):
    """The version is the ``X-API-Version`` request header.

    ``GET /products/`` with ``X-API-Version: 2``. An unknown version is a 400
    ``unsupported_version`` problem.
    """

    sources = (SOURCE_HEADER,)


class NegotiatedVersioning(BaseVersioning, drf_versioning.AcceptHeaderVersioning):
    """The ``Accept`` parameter or the ``X-API-Version`` header, whichever is sent.

    ``GET /products/`` with ``Accept: application/json; version=2`` or with
    ``X-API-Version: 2``. Both naming different versions is a 400
    ``version_conflict`` problem. The default scheme.
    """

    sources = (SOURCE_ACCEPT, SOURCE_HEADER)


class URLPathVersioning(BaseVersioning, drf_versioning.URLPathVersioning):
    """The version is the ``version`` keyword argument of the URL pattern.

    ``GET /api/v2/products/`` routed by
    ``path("api/v<str:version>/", include(...))``. An unknown version is a 400
    ``unsupported_version`` problem; a route without the argument serves the
    default version. ``request.versioning_scheme.reverse()`` keeps the version
    in URLs it builds.
    """

    sources = (SOURCE_URL,)
