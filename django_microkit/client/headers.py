"""What every outgoing call says about itself: header providers.

A header provider is a callable taking the :class:`OutgoingCall` about to be
sent and returning headers to add. ``MICROKIT["CLIENT"]["HEADER_PROVIDERS"]``
(or a service's own ``HEADER_PROVIDERS``) lists them by dotted path; they run
for every attempt, so a retry carries a fresh token and a fresh span. Headers
the caller passes explicitly win over theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django_microkit.conf import derived, microkit_settings
from django_microkit.request_id import new_request_id, outgoing_headers
from django_microkit.service_auth import mint_service_token

__all__ = [
    "HeaderProvider",
    "OutgoingCall",
    "service_token_header",
    "trace_headers",
    "user_agent",
]


@dataclass(frozen=True)
class OutgoingCall:
    """One attempt of a call, as header providers see it."""

    #: The target's name in ``MICROKIT["SERVICES"]``.
    service: str
    #: The ``aud`` its service token must name.
    audience: str
    #: Scopes asked for in the token.
    scopes: tuple[str, ...]
    method: str
    url: str
    #: 1 for the first attempt, 2 for the first retry…
    attempt: int


HeaderProvider = Callable[[OutgoingCall], Mapping[str, str]]


def trace_headers(call: OutgoingCall) -> dict[str, str]:
    """The request ID and W3C trace context to continue the current request.

    ``X-Request-ID`` (or ``MICROKIT["REQUEST_ID"]["HEADER"]``), a child
    ``traceparent`` with a fresh parent-id for each attempt, and the kept
    ``tracestate`` (:func:`django_microkit.request_id.outgoing_headers`). Outside
    a request: a new request ID and a new trace for each call.
    """
    headers = outgoing_headers()
    header = microkit_settings.REQUEST_ID["HEADER"]
    if header not in headers:  # inside a request, the request's ID is kept
        headers[header] = new_request_id()
    return headers


def service_token_header(call: OutgoingCall) -> dict[str, str]:
    """``Authorization: Bearer <token>``: a new service token for the call's
    audience and scopes (:func:`~django_microkit.service_auth.mint_service_token`),
    minted for every attempt since the target refuses a replayed ``jti``.

    Nothing when this service has no signing key (system check ``W061``).
    """
    if not microkit_settings.SERVICE_AUTH["SIGNING_KEYS"]:
        return {}
    token = mint_service_token(call.audience, scopes=call.scopes)
    return {"Authorization": f"Bearer {token}"}


@derived
def user_agent() -> str:
    """``<service>/<version> django-microkit/<version>``, the same for every call
    until ``MICROKIT`` changes."""
    from django_microkit import __version__

    name = microkit_settings.SERVICE_NAME
    version = microkit_settings.SERVICE_VERSION
    caller = f"{name}/{version}" if name and version else name
    return f"{caller} django-microkit/{__version__}".strip()
