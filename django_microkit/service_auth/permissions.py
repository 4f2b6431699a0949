"""Permissions for service tokens in Django REST framework."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.permissions import BasePermission, BasePermissionMetaclass
from rest_framework.request import Request

from django_microkit.service_auth.tokens import (
    InsufficientScope,
    ServicePrincipal,
    ServiceTokenMissing,
    validate_scopes,
)

if TYPE_CHECKING:
    from rest_framework.views import APIView

__all__ = ["HasServiceScope", "IsService", "required_scopes"]


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
