"""Permissions for service tokens in Django REST framework.

They compose with DRF's own ``|``, ``&`` and ``~``, whose ``OR`` / ``AND`` /
``NOT`` keep no message of their operands. So a service permission that refuses
records the precise refusal on the request (:data:`PERMISSION_REFUSAL`), and
django-microkit's exception handler answers with it in place of DRF's generic
``NotAuthenticated`` or ``PermissionDenied``: 401 ``token_missing`` or 403
``insufficient_scope``, whichever composition the permission is in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException
from rest_framework.permissions import AND, BasePermission, OperationHolderMixin
from rest_framework.request import Request

from django_microkit.errors.handler import PERMISSION_REFUSAL
from django_microkit.service_auth.tokens import (
    InsufficientScope,
    ServicePrincipal,
    ServiceTokenMissing,
    validate_scopes,
)

if TYPE_CHECKING:
    from rest_framework.views import APIView

__all__ = ["HasServiceScope", "IsService", "required_scopes"]


class IsService(BasePermission):
    """Allows a request authenticated by a service token; combine with user
    permissions, e.g. ``permission_classes = [IsService | IsAdminUser]``.

    No credentials: 401 ``token_missing``. A user: 403 ``permission_denied``.
    """

    message: Any = _("Only services may call this endpoint.")
    #: Scopes the service token must carry (none for ``IsService`` itself).
    required_scopes: frozenset[str] = frozenset()

    def has_permission(self, request: Request, view: APIView) -> bool:
        user: Any = request.user
        if isinstance(user, ServicePrincipal):
            if user.has_scope(*self.required_scopes):
                return True
            _refuse(request, InsufficientScope(self.required_scopes))
        elif request.successful_authenticator is None:
            _refuse(request, ServiceTokenMissing())
        return False


class HasServiceScope(OperationHolderMixin, IsService):
    """Allows a service whose token carries every one of ``scopes``::

        permission_classes = [HasServiceScope("orders:write")]
        permission_classes = [HasServiceScope("orders:write") | IsAdminUser]

    An instance stands where DRF expects a permission class: DRF, and its
    ``|``, ``&`` and ``~``, call it for the permission, which is itself (it
    keeps no state between requests).

    A service without the scopes: 403 ``insufficient_scope`` with
    ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``.
    """

    message = _("The service token lacks a required scope.")

    def __init__(self, *scopes: str) -> None:
        required = validate_scopes(scopes)
        if not required:
            raise ValueError("HasServiceScope() needs at least one scope")
        self.required_scopes = frozenset(required)

    def __call__(self) -> HasServiceScope:
        return self

    def __repr__(self) -> str:
        return f"HasServiceScope({', '.join(map(repr, sorted(self.required_scopes)))})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HasServiceScope):
            return NotImplemented
        return self.required_scopes == other.required_scopes

    def __hash__(self) -> int:
        return hash(self.required_scopes)


def _refuse(request: Request, refusal: APIException) -> None:
    # The first refusal wins: in ``A | B`` it names what ``A`` needed.
    if getattr(request, PERMISSION_REFUSAL, None) is None:
        setattr(request, PERMISSION_REFUSAL, refusal)


def required_scopes(view: APIView) -> frozenset[str]:
    """Scopes every service calling ``view`` needs: those of its service
    permissions, directly or through ``&``."""
    scopes: set[str] = set()
    pending: list[Any] = list(view.get_permissions())
    while pending:
        permission = pending.pop()
        if isinstance(permission, IsService):
            scopes |= permission.required_scopes
        elif isinstance(permission, AND):
            pending.extend(vars(permission).values())  # op1, op2
    return frozenset(scopes)
