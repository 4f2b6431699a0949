from __future__ import annotations

from common_urls import (  # noqa: F401 (Django reads the handlers here)
    handler400,
    handler403,
    handler404,
    handler500,
    service_urls,
)
from rest_framework.routers import DefaultRouter

from orders.views import OrderViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("orders", OrderViewSet, basename="order")

urlpatterns = service_urls(router)
