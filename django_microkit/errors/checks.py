"""System checks for error handling (IDs ``E010``–``E019``, ``W010``–``W019``),
registered from :mod:`django_microkit.checks`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.urls import get_callable, get_resolver
from django.utils.module_loading import import_string

from django_microkit.checks import is_subclass_path
from django_microkit.conf import microkit_settings
from django_microkit.errors import views
from django_microkit.errors.handler import ExceptionHandler

__all__ = ["check_errors"]

_MIDDLEWARE = "django_microkit.errors.ProblemMiddleware"

#: The root URLconf's error handlers and the views they should be.
_ERROR_VIEWS: dict[int, Callable[..., Any]] = {
    400: views.bad_request,
    403: views.permission_denied,
    404: views.page_not_found,
    500: views.server_error,
}


def check_errors(**kwargs: Any) -> list[CheckMessage]:
    """Error handling is wired: handler class, middleware, error views."""
    return [
        *_check_handler_class(),
        *_check_type_base_uri(),
        *_check_middleware(),
        *_check_error_views(),
        *_check_csrf_failure_view(),
    ]


def _check_handler_class() -> list[CheckMessage]:
    path: object = microkit_settings.ERRORS["HANDLER_CLASS"]
    if not isinstance(path, str):
        return []  # E003 reports the type
    try:
        handler_class = import_string(path)
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if isinstance(handler_class, type) and issubclass(
            handler_class, ExceptionHandler
        ):
            return []
        problem = "is not a subclass of django_microkit.errors.ExceptionHandler"
    return [
        Error(
            f"MICROKIT['ERRORS']['HANDLER_CLASS'] {path!r} {problem}.",
            hint="Name a subclass of django_microkit.errors.ExceptionHandler by "
            "its dotted path.",
            id="django_microkit.E010",
        )
    ]


def _check_type_base_uri() -> list[CheckMessage]:
    base = microkit_settings.ERRORS["TYPE_BASE_URI"]
    if not isinstance(base, str) or not base or urlsplit(base).scheme:
        return []
    return [
        Warning(
            f"MICROKIT['ERRORS']['TYPE_BASE_URI'] {base!r} is not an absolute URI.",
            hint="Problem types are URIs clients may dereference: use an absolute "
            "one such as 'https://errors.example.com/'.",
            id="django_microkit.W014",
        )
    ]


def _check_middleware() -> list[CheckMessage]:
    # Django reports middleware that cannot be imported.
    if not any(is_subclass_path(path, _MIDDLEWARE) for path in settings.MIDDLEWARE):
        return [
            Warning(
                f"{_MIDDLEWARE} is not in MIDDLEWARE.",
                hint="Add it so that plain Django views answer errors (a raised "
                "Problem, Http404, an unexpected exception, a 405) with problem "
                "documents.",
                id="django_microkit.W010",
            )
        ]
    return []


def _check_error_views() -> list[CheckMessage]:
    try:
        resolver = get_resolver()
        handlers = {code: resolver.resolve_error_handler(code) for code in _ERROR_VIEWS}
    except Exception:  # Django's URL checks report a broken URLconf
        return []
    wrong = [
        f"handler{code}"
        for code, view in handlers.items()
        if view is not _ERROR_VIEWS[code]
    ]
    if not wrong:
        return []
    verb = "is" if len(wrong) == 1 else "are"
    lines = "; ".join(
        f'handler{code} = "django_microkit.errors.{_ERROR_VIEWS[code].__name__}"'
        for code in _ERROR_VIEWS
    )
    return [
        Warning(
            f"The root URLconf's {', '.join(wrong)} {verb} not django-microkit's: "
            "these errors are answered with HTML.",
            hint=f"Set in {settings.ROOT_URLCONF}: {lines}.",
            id="django_microkit.W012",
        )
    ]


def _check_csrf_failure_view() -> list[CheckMessage]:
    try:
        view = get_callable(settings.CSRF_FAILURE_VIEW)
    except Exception:  # Django's own checks report a view that cannot be found
        return []
    if view is views.csrf_failure:
        return []
    return [
        Warning(
            "CSRF_FAILURE_VIEW is not django-microkit's, so CSRF failures are "
            "answered with HTML.",
            hint='Set CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure".',
            id="django_microkit.W013",
        )
    ]
