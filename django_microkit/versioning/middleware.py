"""Every response of a versioned view says which version served it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers
from rest_framework.request import Request

from django_microkit._middleware import Middleware
from django_microkit.versioning.config import version_table

__all__ = ["VERSION_HEADER", "VersionHeadersMiddleware", "announce_version"]

#: The request header a client may name a version with, and the response
#: header that says which version served the response.
VERSION_HEADER = "X-API-Version"
_REQUEST_ATTR = "_microkit_api_version"


def announce_version(
    request: HttpRequest | Request, version: str | None, vary: tuple[str, ...] = ()
) -> None:
    """Have :class:`VersionHeadersMiddleware` announce ``version`` (``None``
    for a refusal, which names none) and vary the response on the headers
    ``vary`` names, added to those named before: a cache must keep apart what
    they chose. Left on the Django request, which the middleware sees."""
    http_request = getattr(request, "_request", request)
    announced = http_request.__dict__.get(_REQUEST_ATTR)
    if announced is not None:
        vary = (*announced[1], *vary)
    setattr(http_request, _REQUEST_ATTR, (version, vary))


class VersionHeadersMiddleware(Middleware[None]):
    """Announces the version that served each response of a versioned view.

    Adds ``X-API-Version`` and, for a deprecated version, ``Deprecation``,
    ``Sunset`` and a ``Link`` with ``rel="deprecation"``, to every response a
    django-microkit versioning scheme handled, error responses included; its
    ``Vary`` names the headers the scheme read, refusals included. Responses
    that never reached one (health probes, unmatched URLs) get none.
    """

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: None
    ) -> HttpResponseBase:
        announced = request.__dict__.get(_REQUEST_ATTR)
        if announced is None:
            return response
        version, vary = announced
        if vary and "Vary" in response.headers:
            patch_vary_headers(response, vary)
        elif vary:  # what patch_vary_headers writes where there is none
            response.headers["Vary"] = "*" if "*" in vary else ", ".join(vary)
        if version is None:
            return response
        response[VERSION_HEADER] = version
        deprecation = version_table().deprecated.get(version)
        if deprecation is not None:
            for name, value in deprecation.headers:
                response[name] = value
            if deprecation.link is not None:
                link = f'<{deprecation.link}>; rel="deprecation"'
                existing = response.get("Link")
                response["Link"] = f"{existing}, {link}" if existing else link
        return response
