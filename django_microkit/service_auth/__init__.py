"""Service-to-service authentication: short-lived signed tokens.

A calling service mints a token naming itself (``iss``), the service it calls
(``aud``) and, optionally, scopes; the called service verifies it with the
caller's key, refuses a token it has already seen, and lets DRF treat the
caller as a :class:`ServicePrincipal`::

    # orders, calling catalog
    token = mint_service_token("catalog", scopes=["catalog:write"])
    requests.post(url, json=..., headers={"Authorization": f"Bearer {token}"})

    # catalog
    class ProductViewSet(ModelViewSet):
        authentication_classes = [ServiceTokenAuthentication, SessionAuthentication]
        permission_classes = [HasServiceScope("catalog:write") | IsAdminUser]

Keys, peers and lifetimes come from ``MICROKIT["SERVICE_AUTH"]`` (see
``docs/service-auth.md``). The modules: :mod:`.tokens` (minting, verifying,
refusals), :mod:`.keys` (the settings resolved into keys), :mod:`.permissions`,
:mod:`.authentication` (DRF) and :mod:`.checks`.
"""

from __future__ import annotations

from django_microkit.service_auth.authentication import (
    ServiceTokenAuthentication,
    ServiceTokenScheme,
)
from django_microkit.service_auth.permissions import HasServiceScope, IsService
from django_microkit.service_auth.tokens import (
    TOKEN_TYPE,
    InsufficientScope,
    ServicePrincipal,
    ServiceTokenExpired,
    ServiceTokenInvalid,
    ServiceTokenMissing,
    ServiceTokenReplayed,
    UnknownService,
    WrongAudience,
    mint_service_token,
    verify_service_token,
)

__all__ = [
    "HasServiceScope",
    "InsufficientScope",
    "IsService",
    "ServicePrincipal",
    "ServiceTokenAuthentication",
    "ServiceTokenExpired",
    "ServiceTokenInvalid",
    "ServiceTokenMissing",
    "ServiceTokenReplayed",
    "ServiceTokenScheme",
    "TOKEN_TYPE",
    "UnknownService",
    "WrongAudience",
    "mint_service_token",
    "verify_service_token",
]
