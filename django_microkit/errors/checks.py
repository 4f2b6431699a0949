"""System checks for error handling (IDs ``E010``–``E019``, ``W010``–``W019``),
registered from :mod:`django_microkit.checks`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage
from django.urls import get_callable, get_resolver
from django.utils.module_loading import import_string

from django_microkit.checks import Issue, is_subclass_path
from django_microkit.conf import microkit_settings
from django_microkit.errors import views
from django_microkit.errors.handler import ExceptionHandler

__all__ = ["check_errors"]

_MIDDLEWARE = "django_microkit.errors.ProblemMiddleware"
#: Does what ProblemMiddleware does, and answers Django's own error pages.
_ONE_MIDDLEWARE = "django_microkit.middleware.MicrokitMiddleware"

#: The root URLconf's error handlers and the views they should be.
_ERROR_VIEWS: dict[int, Callable[..., Any]] = {
    400: views.bad_request,
    403: views.permission_denied,
    404: views.page_not_found,
    500: views.server_error,
}


def check_errors(**kwargs: Any) -> list[CheckMessage]:
    """Error handling is wired: handler class, middleware, error views."""
    issues = [_handler_class_issue(), _type_base_uri_issue()]
    # MicrokitMiddleware answers what the error views would: they are optional.
    if not _installed(_ONE_MIDDLEWARE):
        issues += [
            _middleware_issue(),
            _error_views_issue(),
            _csrf_failure_view_issue(),
        ]
    return [issue.message() for issue in issues if issue is not None]


def _installed(middleware: str) -> bool:
    # Django reports middleware that cannot be imported.
    return any(is_subclass_path(path, middleware) for path in settings.MIDDLEWARE)


def _handler_class_issue() -> Issue | None:
    path: object = microkit_settings.ERRORS["HANDLER_CLASS"]
    if not isinstance(path, str):
        return None  # E003 reports the type
    try:
        handler_class = import_string(path)
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if isinstance(handler_class, type) and issubclass(
            handler_class, ExceptionHandler
        ):
            return None
        problem = "is not a subclass of django_microkit.errors.ExceptionHandler"
    return Issue(
        "django_microkit.E010",
        f"MICROKIT['ERRORS']['HANDLER_CLASS'] {path!r} {problem}.",
        "Name a subclass of django_microkit.errors.ExceptionHandler by its dotted "
        "path.",
    )


def _type_base_uri_issue() -> Issue | None:
    base = microkit_settings.ERRORS["TYPE_BASE_URI"]
    if not isinstance(base, str) or not base or urlsplit(base).scheme:
        return None
    return Issue(
        "django_microkit.W014",
        f"MICROKIT['ERRORS']['TYPE_BASE_URI'] {base!r} is not an absolute URI.",
        "Problem types are URIs clients may dereference: use an absolute one such "
        "as 'https://errors.example.com/'.",
    )


def _middleware_issue() -> Issue | None:
    if _installed(_MIDDLEWARE):
        return None
    return Issue(
        "django_microkit.W010",
        f"{_MIDDLEWARE} is not in MIDDLEWARE.",
        "Add it so that plain Django views answer errors (a raised Problem, Http404, "
        "an unexpected exception, a 405) with problem documents.",
    )


def _error_views_issue() -> Issue | None:
    try:
        resolver = get_resolver()
        handlers = {code: resolver.resolve_error_handler(code) for code in _ERROR_VIEWS}
    except Exception:  # Django's URL checks report a broken URLconf
        return None
    wrong = [
        f"handler{code}"
        for code, view in handlers.items()
        if view is not _ERROR_VIEWS[code]
    ]
    if not wrong:
        return None
    verb = "is" if len(wrong) == 1 else "are"
    lines = "; ".join(
        f'handler{code} = "django_microkit.errors.{_ERROR_VIEWS[code].__name__}"'
        for code in _ERROR_VIEWS
    )
    return Issue(
        "django_microkit.W012",
        f"The root URLconf's {', '.join(wrong)} {verb} not django-microkit's: "
        "these errors are answered with HTML.",
        f"Set in {settings.ROOT_URLCONF}: {lines}.",
    )


def _csrf_failure_view_issue() -> Issue | None:
    try:
        view = get_callable(settings.CSRF_FAILURE_VIEW)
    except Exception:  # Django's own checks report a view that cannot be found
        return None
    if view is views.csrf_failure:
        return None
    return Issue(
        "django_microkit.W013",
        "CSRF_FAILURE_VIEW is not django-microkit's, so CSRF failures are answered "
        "with HTML.",
        'Set CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure".',
    )
