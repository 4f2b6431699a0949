from __future__ import annotations

from common_urls import (  # noqa: F401 (Django reads the handlers here)
    handler400,
    handler403,
    handler404,
    handler500,
    service_urls,
)

from catalog.views import ProductViewSet

urlpatterns = service_urls("products", ProductViewSet, "product")
