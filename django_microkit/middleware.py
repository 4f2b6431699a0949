"""The one middleware a service installs.

``MIDDLEWARE.insert(0, "django_microkit.middleware.MicrokitMiddleware")`` does
what :class:`~django_microkit.request_id.RequestIDMiddleware`,
:class:`~django_microkit.errors.ProblemMiddleware` and
:class:`~django_microkit.versioning.VersionHeadersMiddleware` do in that order,
in one call per request, and answers API clients with problem documents where
Django would answer with an HTML page: an unknown URL, a CSRF refusal, an
exception escaping a view or a middleware, ``DEBUG``'s technical pages. So the
root URLconf's ``handler400``–``handler500`` and ``CSRF_FAILURE_VIEW`` need not
be set (they are still honoured). A service that needs other middleware between
the three installs them one by one instead.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase

from django_microkit._middleware import GetResponse
from django_microkit.errors.middleware import ProblemMiddleware, convert_error_page
from django_microkit.request_id import RequestIDMiddleware
from django_microkit.versioning.middleware import VersionHeadersMiddleware

__all__ = ["MicrokitMiddleware"]


class MicrokitMiddleware(RequestIDMiddleware):
    """Request ID, access line, problem documents and version headers.

    Place it first in ``MIDDLEWARE``: it must wrap everything that logs, and it
    must see the pages Django's handler makes of the errors met outside a view.
    It is a :class:`~django_microkit.request_id.RequestIDMiddleware` (its
    ``before`` and ``end``), so what looks for that one finds it, and its
    ``after`` runs the other two's ``after`` hooks before its own, as the three
    installed in order would.

    An API client (one that does not prefer ``text/html``) gets a problem for
    every error, ``DEBUG`` on or off; a browser gets Django's technical pages
    under ``DEBUG``, and its HTML pages with ``HTML_FALLBACK``.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.problems = ProblemMiddleware(get_response)
        self.versions = VersionHeadersMiddleware(get_response)

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: Any
    ) -> HttpResponseBase:
        response = convert_error_page(request, response)
        response = self.versions.after(request, response, None)
        response = self.problems.after(request, response, None)
        return super().after(request, response, state)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        """An exception a view raised, as :class:`ProblemMiddleware` answers it."""
        return self.problems.process_exception(request, exception)
