"""Views behind /service-auth/ for tests/test_service_auth.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.urls import path
from rest_framework.authentication import (
    BasicAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.permissions import (
    SAFE_METHODS,
    AllowAny,
    BasePermission,
    IsAdminUser,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_microkit.service_auth import (
    HasServiceScope,
    IsService,
    ServicePrincipal,
    ServiceTokenAuthentication,
)


class ReadOnly(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS


class ObjectsOfOrders(BasePermission):
    """Allows every request, and only the object named "orders"."""

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return bool(obj == "orders")


class WhoAmI(APIView):
    authentication_classes = [ServiceTokenAuthentication, BasicAuthentication]
    permission_classes: Any = [IsService]

    def get(self, request: Request) -> Response:
        user: Any = request.user
        if isinstance(user, ServicePrincipal):
            return Response(
                {
                    "service": user.name,
                    "scopes": sorted(user.scopes),
                    # DRF's stubs type ``auth`` as a token model; here it is the claims.
                    "auth": dict(cast("Mapping[str, Any]", request.auth)),
                }
            )
        return Response({"user": str(user)})

    def post(self, request: Request) -> Response:
        return self.get(request)


class ObjectView(WhoAmI):
    def get(self, request: Request) -> Response:
        self.check_object_permissions(request, request.query_params.get("object"))
        return super().get(request)


def _view(
    permissions: list[Any], base: type[WhoAmI] = WhoAmI, **attributes: Any
) -> Any:
    return base.as_view(permission_classes=permissions, **attributes)


urlpatterns = [
    path("service/", _view([IsService])),
    path(
        "token-only/",
        _view([IsService], authentication_classes=[ServiceTokenAuthentication]),
    ),
    path(
        "token-session-token/",
        _view(
            [IsService],
            authentication_classes=[
                ServiceTokenAuthentication,
                SessionAuthentication,
                TokenAuthentication,
            ],
        ),
    ),
    path("scoped/", _view([HasServiceScope("orders:write", "orders:read")])),
    path("open/", _view([AllowAny])),
    path("service-or-admin/", _view([IsService | IsAdminUser])),
    path("scope-or-admin/", _view([HasServiceScope("catalog:write") | IsAdminUser])),
    path("admin-or-scope/", _view([IsAdminUser | HasServiceScope("catalog:write")])),
    path(
        "either-scope/",
        _view([HasServiceScope("a") | HasServiceScope("b")]),  # type: ignore[operator]
    ),
    path("scope-or-read/", _view([HasServiceScope("x") | ReadOnly])),
    path("service-and-scope/", _view([IsService & HasServiceScope("x")])),
    path("read-and-scope/", _view([ReadOnly & HasServiceScope("x")])),
    path("not-service/", _view([~IsService])),
    path("drf-outer/", _view([(IsAdminUser | ReadOnly) & IsService])),
    path("object-any/", _view([HasServiceScope("x") | ObjectsOfOrders], ObjectView)),
    path("object-all/", _view([IsService & ObjectsOfOrders], ObjectView)),
]
