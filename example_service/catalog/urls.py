from __future__ import annotations

from common_urls import (  # noqa: F401 (Django reads the handlers here)
    handler400,
    handler403,
    handler404,
    handler500,
    service_urls,
)
from rest_framework.routers import DefaultRouter

from catalog.views import ProductViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("products", ProductViewSet, basename="product")

urlpatterns = service_urls(router)
