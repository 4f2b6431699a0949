"""Views calling another service through ServiceClient (``/client/...``)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_microkit.client import NotFoundError, ServiceClient, ServiceUnavailableError

catalog = ServiceClient("catalog")


def product(request: HttpRequest, product_id: int) -> JsonResponse:
    try:
        found = catalog.get(f"/api/products/{product_id}/")
    except NotFoundError as exc:
        return JsonResponse({"found": False, "code": exc.code}, status=404)
    except ServiceUnavailableError as exc:
        return JsonResponse({"error": exc.code}, status=503)
    return JsonResponse(found)


async def product_async(request: HttpRequest, product_id: int) -> JsonResponse:
    found = await sync_to_async(catalog.get, thread_sensitive=False)(
        f"/api/products/{product_id}/"
    )
    return JsonResponse(found)


urlpatterns = [
    path("products/<int:product_id>/", product),
    path("async/products/<int:product_id>/", product_async),
]
