from __future__ import annotations

from django.urls import path
from health_check.views import HealthCheckView

from benchmarks.benchapp import views
from benchmarks.benchapp.checks import SleepingCheck
from benchmarks.stacks.microkit_urls import urlpatterns as microkit_urlpatterns

urlpatterns = [
    *microkit_urlpatterns,
    # The same work as a fresh readiness round, written by hand; under
    # ACCESS_LOG.HEALTH_PATHS, so its access line is logged at DEBUG as a probe's.
    path("health/django-ready", views.django_ready),
    *(
        path(
            f"health/hc-{count}",
            HealthCheckView.as_view(
                checks=[(SleepingCheck, {"name": f"sleep-{i}"}) for i in range(count)]
            ),
        )
        for count in (1, 4, 8)
    ),
]
