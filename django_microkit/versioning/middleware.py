"""Every response of a versioned view says which version served it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers

from django_microkit.versioning.config import _table
from django_microkit.versioning.schemes import _REQUEST_ATTR, VERSION_HEADER

__all__ = ["VersionHeadersMiddleware"]


class VersionHeadersMiddleware:
    """Announces the version that served each response of a versioned view.

    Adds ``X-API-Version`` and, for a deprecated version, ``Deprecation``,
    ``Sunset`` and a ``Link`` with ``rel="deprecation"``, to every response a
    django-microkit versioning scheme handled, error responses included.
    Responses that never reached one (health probes, unmatched URLs) get none.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(
        self, request: HttpRequest
    ) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        _announce(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        result = self.get_response(request)
        assert not isinstance(result, HttpResponseBase)
        response = await result
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
        patch_vary_headers(response, vary)
