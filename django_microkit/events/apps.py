"""The Django application that holds the event tables (outbox, inbox, dead letters)."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["EventsConfig"]


class EventsConfig(AppConfig):
    """Add ``"django_microkit.events"`` to ``INSTALLED_APPS`` (after
    ``"django_microkit"``) to publish or consume events; its checks are
    registered by ``django_microkit`` itself."""

    name = "django_microkit.events"
    label = "microkit_events"
    verbose_name = "django-microkit events"
    default_auto_field = "django.db.models.BigAutoField"
