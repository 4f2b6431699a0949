"""Django application configuration for django-microkit."""

from __future__ import annotations

from django.apps import AppConfig


class MicrokitConfig(AppConfig):
    name = "django_microkit"
    label = "django_microkit"
    verbose_name = "django-microkit"

    def ready(self) -> None:
        # Registering the checks is the only start-up work: nothing else may run
        # at import time of a service.
        from django_microkit import checks  # noqa: F401
