"""Handlers of the events tests: each leaves a Widget row as its effect."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rest_framework import serializers

from django_microkit.events import Event, EventHandler
from tests.testapp.models import Widget

#: Failures left to the flaky handler, per widget name.
FAILURES: dict[str, int] = {}


class WidgetSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    size = serializers.IntegerField(min_value=0)


class WidgetCreated(EventHandler):
    """Creates the widget; a widget named ``explode`` fails after its write
    (which the rollback must undo), ``flaky-*`` ones fail FAILURES times."""

    serializer_class = WidgetSerializer

    def handle(self, event: Event, data: Any) -> None:
        Widget.objects.create(name=data["name"], size=data["size"])
        if data["name"] == "explode":
            raise RuntimeError("the widget exploded")
        if FAILURES.get(data["name"], 0) > 0:
            FAILURES[data["name"]] -= 1
            raise ConnectionError("the warehouse is away")
        pause = os.environ.get("MICROKIT_TEST_HANDLER_PAUSE")
        if pause and data["name"].startswith("slow"):
            mark = os.environ.get("MICROKIT_TEST_HANDLER_MARK")
            if mark:  # tells a test the handler is inside its transaction
                Path(mark).touch()
            time.sleep(float(pause))


def widget_resized(event: Event, data: Any) -> None:
    """A plain function handler: data unvalidated."""
    Widget.objects.filter(name=data["name"]).update(size=data["size"])


class NotAHandler:
    pass


class BadSerializer(EventHandler):
    serializer_class = dict  # type: ignore[assignment]


HANDLERS = {
    "orders.widget.created.v1": "tests.testapp.event_handlers.WidgetCreated",
    "orders.widget.resized.v1": "tests.testapp.event_handlers.widget_resized",
}
