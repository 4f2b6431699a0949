"""Service tokens in Django REST framework: the authentication class and its
OpenAPI security scheme."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from django_microkit.metrics.families import SERVICE_AUTH_REFUSALS
from django_microkit.service_auth.permissions import required_scopes
from django_microkit.service_auth.tokens import (
    TOKEN_TYPE,
    ServicePrincipal,
    ServiceTokenInvalid,
    realm,
    verify_service_token,
)

__all__ = ["ServiceTokenAuthentication", "ServiceTokenScheme"]

logger = logging.getLogger("django_microkit.service_auth")

_REFUSAL_ATTR = "_microkit_service_token_refusal"
# RFC 6750 §3: error_description = *( %x20-21 / %x23-5B / %x5D-7E )
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5B\x5D-\x7E]")


class ServiceTokenAuthentication(BaseAuthentication):
    """Authenticates a calling service by its token::

        GET /products/ HTTP/1.1
        Authorization: Bearer eyJhbGciOiJFZERTQSIsImtpZCI6Im9yZGVycy0yMDI1MDYi...

    ``request.user`` becomes a :class:`ServicePrincipal` and ``request.auth``
    the verified claims. A request without ``Authorization``, or with another
    scheme, is left to the next authentication class; a ``Bearer`` token that
    fails verification is refused (401) with ``WWW-Authenticate: Bearer
    realm="<service>", error="invalid_token", error_description="..."``.

    List it first in ``authentication_classes``: DRF takes the
    ``WWW-Authenticate`` of a 401 from the first class, and this one names
    every scheme the view accepts (:meth:`authenticate_header`).
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, Any] | None:
        scheme, _space, credentials = request.META.get(
            "HTTP_AUTHORIZATION", ""
        ).partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        token = credentials.strip()
        try:
            if not token or " " in token:
                raise ServiceTokenInvalid(_("The Authorization header is malformed."))
            principal = verify_service_token(token)
        except ServiceTokenInvalid as exc:
            setattr(request, _REFUSAL_ATTR, exc)
            SERVICE_AUTH_REFUSALS.labels(str(exc.get_codes())).inc()
            logger.info("Service token refused: %s", exc.get_codes())
            raise
        return principal, principal.claims

    def authenticate_header(self, request: Request) -> str:
        """``Bearer``, then the challenges of the request's other classes
        (``Basic realm="api"``): DRF asks only the first class, and a 401 names
        every scheme the endpoint accepts (RFC 9110 §11.6.1)."""
        bearer = f'Bearer realm="{realm()}"'
        refusal = getattr(request, _REFUSAL_ATTR, None)
        # RFC 6750 §3.1: no error code when no token was sent.
        if refusal is not None:
            description = _NOT_IN_DESCRIPTION.sub("", str(refusal.detail))
            bearer += f', error="invalid_token", error_description="{description}"'
        others = [
            authenticator.authenticate_header(request)
            for authenticator in request.authenticators or ()
            if isinstance(authenticator, BaseAuthentication)
            and not isinstance(authenticator, ServiceTokenAuthentication)
        ]
        return ", ".join([bearer, *filter(None, others)])


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    """drf-spectacular: the ``ServiceToken`` HTTP bearer security scheme.

    Operations list the scopes their permissions require when the schema is
    OpenAPI 3.1 (3.0 allows scopes for OAuth2 schemes only).
    """

    target_class = "django_microkit.service_auth.ServiceTokenAuthentication"
    match_subclasses = True
    name = "ServiceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A short-lived JWT (typ " + TOKEN_TYPE + ") signed by a known "
                "calling service, with this service as its audience."
            ),
        }

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[Any]]:
        scopes: list[str] = []
        if str(spectacular_settings.OAS_VERSION).startswith("3.1"):
            scopes = sorted(required_scopes(auto_schema.view))
        return {self.name: scopes}
