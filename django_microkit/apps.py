"""Django application configuration for django-microkit."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["MicrokitConfig"]


class MicrokitConfig(AppConfig):
    name = "django_microkit"
    label = "django_microkit"
    verbose_name = "django-microkit"

    def ready(self) -> None:
        # Nothing may run at import time of a service: checks are registered
        # here, and Sentry starts here (for the web process, manage.py commands
        # and workers alike) when MICROKIT["SENTRY"]["DSN"] is set.
        from django_microkit.checks import register_checks
        from django_microkit.conf import microkit_settings

        register_checks()

        if microkit_settings.SENTRY["DSN"]:
            from django_microkit.sentry import init_sentry

            init_sentry()
