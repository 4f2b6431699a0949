"""The probe routes: ``path("", include("django_microkit.health.urls"))``.

``/health/live``, ``/health/ready`` and ``/health/startup`` by default; the
prefix is ``MICROKIT["HEALTH"]["URL_PREFIX"]``, read when the URLconf loads.
"""

from __future__ import annotations

from django_microkit.health.views import health_urlpatterns

urlpatterns = health_urlpatterns()
