"""Every response of a versioned view says which version served it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers

from django_microkit._middleware import Middleware
from django_microkit.versioning.config import _table
from django_microkit.versioning.schemes import _REQUEST_ATTR, VERSION_HEADER

__all__ = ["VersionHeadersMiddleware"]


class VersionHeadersMiddleware(Middleware[None]):
    """Announces the version that served each response of a versioned view.

    Adds ``X-API-Version`` and, for a deprecated version, ``Deprecation``,
    ``Sunset`` and a ``Link`` with ``rel="deprecation"``, to every response a
    django-microkit versioning scheme handled, error responses included.
    Responses that never reached one (health probes, unmatched URLs) get none.
    """

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: None
    ) -> HttpResponseBase:
        _announce(request, response)
        return response


def _announce(request: HttpRequest, response: HttpResponseBase) -> None:
    state = request.__dict__.get(_REQUEST_ATTR)
    if state is None:
        return
    version, vary = state
    response[VERSION_HEADER] = version
    deprecation = _table().deprecated.get(version)
    if deprecation is not None:
        for name, value in deprecation.headers:
            response[name] = value
        if deprecation.link is not None:
            link = f'<{deprecation.link}>; rel="deprecation"'
            existing = response.get("Link")
            response["Link"] = f"{existing}, {link}" if existing else link
    if vary:
        if response.has_header("Vary"):
            patch_vary_headers(response, vary)
        else:
            response.headers["Vary"] = ", ".join(vary)
