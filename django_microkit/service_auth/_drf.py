"""Service tokens in Django REST framework: the authentication class, the
permissions, and the OpenAPI security scheme."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.permissions import BasePermission, BasePermissionMetaclass
from rest_framework.request import Request
from rest_framework.views import APIView

from django_microkit.service_auth._tokens import (
    TOKEN_TYPE,
    InsufficientScope,
    ServicePrincipal,
    ServiceTokenInvalid,
    ServiceTokenMissing,
    realm,
    validate_scopes,
    verify_service_token,
)

__all__ = [
    "HasServiceScope",
    "IsService",
    "ServiceTokenAuthentication",
    "ServiceTokenScheme",
]

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
    ``WWW-Authenticate`` of a 401 from the first class.
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
            logger.info("Service token refused: %s", exc.get_codes())
            raise
        return principal, principal.claims

    def authenticate_header(self, request: Request) -> str:
        header = f'Bearer realm="{realm()}"'
        refusal = getattr(request, _REFUSAL_ATTR, None)
        if refusal is None:
            # RFC 6750 §3.1: no error code when no credentials were sent.
            return header
        description = _NOT_IN_DESCRIPTION.sub("", str(refusal.detail))
        return f'{header}, error="invalid_token", error_description="{description}"'


class _ServicePermissionMetaclass(BasePermissionMetaclass):
    """Composes with ``|`` and ``&`` into permissions that keep the precise
    refusal of their service operands.

    Because this is a subclass of DRF's permission metaclass, Python gives it
    the first say in ``IsAdminUser | IsService`` too.
    """

    def __or__(cls, other: Any) -> Any:
        return _compose(_AnyOf, cls, other)

    def __ror__(cls, other: Any) -> Any:
        return _compose(_AnyOf, other, cls)

    def __and__(cls, other: Any) -> Any:
        return _compose(_AllOf, cls, other)

    def __rand__(cls, other: Any) -> Any:
        return _compose(_AllOf, other, cls)


class _ServicePermission(BasePermission, metaclass=_ServicePermissionMetaclass):
    """A permission that remembers why it refused.

    DRF turns a refusal into ``NotAuthenticated`` (no credentials) or
    ``PermissionDenied`` with the permission's ``message``. Those say nothing of
    a missing service token or scope, so the refusal found during
    ``has_permission`` (``ServiceTokenMissing``, ``InsufficientScope``) is
    raised when DRF asks a refusing permission for its ``message``: in
    ``APIView.check_permissions`` that is the moment the refusal is final, and
    inside a composition it is never asked.
    """

    default_message: ClassVar[Any] = _("Only services may call this endpoint.")
    _refusal: APIException | None = None

    @property
    def message(self) -> Any:
        if self._refusal is not None:
            raise self._refusal
        return self.default_message


class IsService(_ServicePermission):
    """Allows a request authenticated by a service token; combine with user
    permissions, e.g. ``permission_classes = [IsService | IsAdminUser]``.

    No credentials: 401 ``token_missing``. A user: 403 ``permission_denied``.
    """

    #: Scopes the service token must carry (none for ``IsService`` itself).
    required_scopes: ClassVar[frozenset[str]] = frozenset()

    def has_permission(self, request: Request, view: APIView) -> bool:
        user: Any = request.user
        self._refusal = None
        if isinstance(user, ServicePrincipal):
            if user.scopes >= self.required_scopes:
                return True
            self._refusal = InsufficientScope(self.required_scopes)
        elif request.successful_authenticator is None:
            self._refusal = ServiceTokenMissing()
        return False


_scope_permissions: dict[tuple[str, ...], type[IsService]] = {}


def HasServiceScope(*scopes: str) -> type[IsService]:
    """A permission class allowing a service whose token carries every one of
    ``scopes``: ``permission_classes = [HasServiceScope("orders:write")]``.

    A service without them: 403 ``insufficient_scope`` with
    ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``.
    """
    required = validate_scopes(scopes)
    if not required:
        raise ValueError("HasServiceScope() needs at least one scope")
    permission = _scope_permissions.get(required)
    if permission is None:
        name = f"HasServiceScope({', '.join(map(repr, required))})"
        created: Any = _ServicePermissionMetaclass(
            name,
            (IsService,),
            {
                "__module__": __name__,
                "__qualname__": name,
                "__doc__": f"Allows a service with the scope(s) {', '.join(required)}.",
                "required_scopes": frozenset(required),
                "default_message": _("The service token lacks a required scope."),
            },
        )
        permission = _scope_permissions.setdefault(required, created)
    return permission


class _Composition(_ServicePermission):
    operands: ClassVar[tuple[Any, ...]] = ()
    default_message = PermissionDenied.default_detail

    def __init__(self) -> None:
        self.ops = [operand() for operand in self.operands]

    def _refused(self, allowed: bool) -> bool:
        self._refusal = None
        if not allowed:
            self._refusal = next(
                (
                    op._refusal
                    for op in self.ops
                    if isinstance(op, _ServicePermission) and op._refusal is not None
                ),
                None,
            )
        return allowed


class _AnyOf(_Composition):
    """``A | B``, as DRF's ``OR``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return self._refused(any(op.has_permission(request, view) for op in self.ops))

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return self._refused(
            any(
                op.has_permission(request, view)
                and op.has_object_permission(request, view, obj)
                for op in self.ops
            )
        )


class _AllOf(_Composition):
    """``A & B``, as DRF's ``AND``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return self._refused(all(op.has_permission(request, view) for op in self.ops))

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return self._refused(
            all(op.has_object_permission(request, view, obj) for op in self.ops)
        )


def _compose(kind: type[_Composition], first: Any, second: Any) -> Any:
    symbol = "|" if kind is _AnyOf else "&"
    name = f"({_name(first)} {symbol} {_name(second)})"
    return _ServicePermissionMetaclass(
        name,
        (kind,),
        {"__module__": __name__, "__qualname__": name, "operands": (first, second)},
    )


def _name(operand: Any) -> str:
    return operand.__name__ if isinstance(operand, type) else type(operand).__name__


def required_scopes(view: APIView) -> frozenset[str]:
    """Scopes every service calling ``view`` needs: those of its service
    permissions, directly or through ``&``."""
    scopes: set[str] = set()
    pending: list[Any] = list(view.get_permissions())
    while pending:
        permission = pending.pop()
        if isinstance(permission, IsService):
            scopes |= permission.required_scopes
        elif isinstance(permission, _AllOf):
            pending.extend(permission.ops)
    return frozenset(scopes)


class ServiceTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
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
