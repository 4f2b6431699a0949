"""System checks of ``MICROKIT["TRACING"]``: only while ``ENABLED``, and
without importing opentelemetry otherwise."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from django_microkit.checks import is_subclass_path
from django_microkit.conf import microkit_settings

__all__ = ["check_tracing"]

_WHERE = "MICROKIT['TRACING']"
_TRACING_CLASS = "django_microkit.tracing.otel.Tracing"


def _importable(path: object) -> str | None:
    """Why ``path`` is not the dotted path of a callable, or ``None``."""
    if not isinstance(path, str):
        return "is not a dotted path"
    try:
        value = import_string(path)
    except ImportError as exc:
        return f"cannot be imported ({exc})"
    return None if callable(value) else "is not callable"


def check_tracing(**kwargs: Any) -> list[CheckMessage]:
    """``E120``–``E122``, ``W120``: the ``otel`` extra is installed, and the
    span processors and the tracing class can be used."""
    section = microkit_settings.TRACING
    if section["ENABLED"] is not True:
        return []
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return [
            Error(
                f"{_WHERE}['ENABLED'] is on but the OpenTelemetry SDK is not "
                "installed.",
                hint="Install the extra: pip install 'django-microkit[otel]', "
                "or set ENABLED to False.",
                id="django_microkit.E120",
            )
        ]
    messages: list[CheckMessage] = []
    processors: object = section["SPAN_PROCESSORS"]
    if isinstance(processors, list | tuple):
        for path in processors:
            problem = _importable(path)
            if problem is not None:
                messages.append(
                    Error(
                        f"{_WHERE}['SPAN_PROCESSORS'] entry {path!r} {problem}.",
                        hint="Give the dotted path of a callable (or a class) "
                        "returning an OpenTelemetry SpanProcessor; the default is "
                        "'django_microkit.tracing.otel.otlp_span_processor'.",
                        id="django_microkit.E121",
                    )
                )
        if not processors:
            messages.append(
                Warning(
                    f"{_WHERE}['SPAN_PROCESSORS'] is empty: spans are made and "
                    "exported nowhere.",
                    hint="Keep the default OTLP processor "
                    "('django_microkit.tracing.otel.otlp_span_processor'), name "
                    "your own, or set ENABLED to False.",
                    id="django_microkit.W120",
                )
            )
    tracing_class: object = section["TRACING_CLASS"]
    if isinstance(tracing_class, str) and not is_subclass_path(
        tracing_class, _TRACING_CLASS
    ):
        messages.append(
            Error(
                f"{_WHERE}['TRACING_CLASS'] {tracing_class!r} is not "
                f"{_TRACING_CLASS} or an importable subclass of it.",
                hint=f"Name a subclass of {_TRACING_CLASS}, or remove the key.",
                id="django_microkit.E122",
            )
        )
    return messages
