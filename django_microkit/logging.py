"""Structured logging: one JSON line per event, whoever emits it.

structlog loggers and the standard library's ``logging`` (Django's own loggers,
third-party libraries) go through the same processors, so every line carries
``timestamp``, ``level``, ``logger``, ``service`` and, while a request is
handled, ``request_id`` and ``trace_id``. A service applies it with one
setting::

    LOGGING = django_microkit.logging.logging_config()

Logging is where request time goes, so the path is kept short: events below the
configured level are dropped before any processor runs, bound loggers are
cached, JSON is rendered by orjson when it is installed, and
:class:`~django_microkit.request_id.RequestIDMiddleware` writes a single access
line per request (logger ``django_microkit.access``, :func:`log_access`). That
line and the client's ``service_call`` line, written on every request or call,
skip structlog's bound logger and processor chain (see :func:`log_event`).
"""

from __future__ import annotations

import inspect
import json
import logging
import logging.config
import re
import time
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dt_time
from time import perf_counter
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import quote
from uuid import UUID

import structlog
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.functional import LazyObject, empty
from structlog.contextvars import merge_contextvars
from structlog.stdlib import ProcessorFormatter
from structlog.typing import EventDict, Processor, WrappedLogger

from django_microkit.checks import is_subclass_path
from django_microkit.conf import derived, microkit_settings

__all__ = [
    "ACCESS_LOGGER",
    "MicrokitFormatter",
    "Renderer",
    "access_log_at_debug",
    "check_logging",
    "check_logging_deploy",
    "configure_logging",
    "configure_structlog",
    "log_access",
    "log_event",
    "logging_config",
    "milliseconds",
]

#: Name of the logger that writes one line per request.
ACCESS_LOGGER = "django_microkit.access"

#: How a line is written: ``"json"`` for production, ``"console"`` for a terminal.
Renderer = Literal["json", "console"]
_RENDERERS = ("json", "console")


# --------------------------------------------------------------------------
# Processors and renderers
# --------------------------------------------------------------------------


def _service_name() -> str:
    try:
        return str(microkit_settings.SERVICE_NAME)
    except ImproperlyConfigured:  # logging before Django is configured
        return ""


_second_text: tuple[int, str] = (0, "")


def _iso_timestamp(created: float) -> str:
    """``created`` (a Unix time) as ISO 8601 in UTC, to the microsecond."""
    global _second_text
    second = int(created)
    cached_second, text = _second_text
    if second != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{int((created - second) * 1_000_000):06d}Z"


def _add_record_fields(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Adds ``timestamp`` (when the event was logged), ``level``, ``logger`` and
    ``service`` from the log record the event travels in."""
    _record_fields(event_dict, event_dict["_record"])
    return event_dict


def _record_fields(event_dict: EventDict, record: logging.LogRecord) -> None:
    event_dict["timestamp"] = _iso_timestamp(record.created)
    event_dict["level"] = record.levelname.lower()
    event_dict["logger"] = record.name
    service = _service_name()
    if service:
        event_dict["service"] = service


def _json_default(value: Any) -> Any:
    """What JSON cannot say natively, said the way orjson says it."""
    if isinstance(value, datetime | date | dt_time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return repr(value)


def _json_serializer() -> Callable[..., str]:
    """orjson when installed (the ``orjson`` extra), else the standard library."""
    try:
        import orjson
    except ImportError:
        dumps = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
        return lambda obj, **kw: dumps(obj)

    options = orjson.OPT_NON_STR_KEYS

    def orjson_dumps(obj: Any, **kw: Any) -> str:
        return orjson.dumps(obj, default=repr, option=options).decode()

    return orjson_dumps


def _processors(serializer: Callable[..., str] | None) -> list[Processor]:
    """What the formatter runs on every event, structlog's and stdlib's alike:
    JSON written by ``serializer``, or for a terminal without one."""
    processors: list[Processor] = [
        _add_record_fields,
        ProcessorFormatter.remove_processors_meta,
    ]
    if serializer is not None:
        # A plain traceback: never local variables, which may hold secrets.
        processors.append(structlog.processors.format_exc_info)
        processors.append(structlog.processors.JSONRenderer(serializer))
    else:
        processors.append(
            structlog.dev.ConsoleRenderer(
                exception_formatter=structlog.dev.plain_traceback
            )
        )
    return processors


class MicrokitFormatter(ProcessorFormatter):
    """A ``logging`` formatter rendering every record with django-microkit's
    processors, as JSON (``renderer="json"``) or for a terminal
    (``renderer="console"``).

    Creating it also configures structlog (see :func:`configure_structlog`) with
    ``level``, so that structlog loggers write through it; pass
    ``configure_structlog=False`` to keep a structlog configuration of your own.
    """

    def __init__(
        self,
        renderer: Renderer = "json",
        level: int | str = logging.INFO,
        configure_structlog: bool = True,
        **kwargs: Any,
    ) -> None:
        _check_renderer(renderer)
        serializer = _json_serializer() if renderer == "json" else None
        processors = _processors(serializer)
        super().__init__(
            processors=processors,
            foreign_pre_chain=[merge_contextvars],
            **kwargs,
        )
        # The line is the JSON of the event alone unless another format was
        # given: then log_event's events are rendered in one step (format()).
        plain = kwargs.get("fmt", "%(message)s") == "%(message)s"
        self._one_step: tuple[list[Processor], Callable[..., str]] | None = (
            (processors, serializer)
            if serializer is not None and plain and kwargs.get("style", "%") == "%"
            else None
        )
        if configure_structlog:
            _configure_structlog(level)

    def format(self, record: logging.LogRecord) -> str:
        """A record from :func:`log_event` carries its finished event, which
        the JSON processors would only serialize: this serializes it, leaving
        the record and the event intact for other handlers. Every other record,
        and this one wherever the processors would do more (a replaced event
        or processor list, an exception to format, the console renderer), goes
        through :class:`~structlog.stdlib.ProcessorFormatter` unchanged."""
        event = getattr(record, _FINISHED_EVENT, None)
        one_step = self._one_step
        if (
            event is None
            or event is not record.msg
            or one_step is None
            or self.processors is not one_step[0]
            or "exc_info" in event
        ):
            return super().format(record)
        return one_step[1](event)


def _check_renderer(renderer: str) -> None:
    if renderer not in _RENDERERS:
        raise ValueError(f"renderer must be one of {_RENDERERS}, not {renderer!r}.")


class _Installed(NamedTuple):
    """What :func:`configure_structlog` installed, as ``structlog.get_config()``
    gave it back, and the level of its bound loggers."""

    config: dict[str, Any]
    level: int


_installed: _Installed | None = None


def configure_structlog(level: int | str = logging.INFO) -> None:
    """Send structlog events through ``logging`` to :class:`MicrokitFormatter`.

    Events below ``level`` cost one method call: the bound logger drops them
    before any processor runs. Bound loggers are cached on first use.
    """
    global _installed
    number = _level_number(level)
    structlog.configure(
        processors=[merge_contextvars, ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        context_class=dict,
        cache_logger_on_first_use=True,
    )
    config = structlog.get_config()
    # A copy of the processor list: capture_logs() changes the configured list
    # in place, and must then find the two unequal.
    _installed = _Installed({**config, "processors": config["processors"][:]}, number)


# MicrokitFormatter's argument of that name hides the function.
_configure_structlog = configure_structlog


#: The levels structlog's filtering loggers know (and ``logging`` names).
_LEVELS = (
    logging.NOTSET,
    logging.DEBUG,
    logging.INFO,
    logging.WARNING,
    logging.ERROR,
    logging.CRITICAL,
)


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        if level not in _LEVELS:
            raise ValueError(
                f"Unknown log level: {level!r}; use one of "
                + ", ".join(logging.getLevelName(known) for known in _LEVELS)
                + "."
            )
        return level
    # getLevelName maps a registered level name to its number.
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"Unknown log level: {level!r}.")
    return number


def logging_config(
    *,
    renderer: Renderer = "json",
    level: int | str = "INFO",
    stream: str | None = None,
    filename: str | None = None,
    handler: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``LOGGING`` dict: every log line rendered by :class:`MicrokitFormatter`
    and written to one destination, standard output unless told otherwise.

    ``stream`` names another stream (``"ext://sys.stderr"``); ``filename`` a
    file, appended to by a ``WatchedFileHandler``, which reopens it when
    logrotate moves it away; ``handler`` any ``dictConfig`` handler (``{"class":
    "logging.handlers.SysLogHandler", "address": "/dev/log"}``), given the
    formatter. One destination keeps one copy of each line: more handlers can
    still be added to the returned dict.

    Django's ``django.request`` logger is set to ``ERROR``: its 4xx warnings
    ("Not Found: /x") repeat what the access line says, so they are dropped
    before a record is even built; 5xx errors are still logged, once, with
    their traceback. ``django.server`` (``runserver``'s own request lines) is set
    to ``ERROR`` for the same reason. Extend the returned dict as usual, e.g.
    ``config["loggers"]["orders"] = {"level": "DEBUG"}``.
    """
    _check_renderer(renderer)
    name = logging.getLevelName(_level_number(level))
    if sum(given is not None for given in (stream, filename, handler)) > 1:
        raise ValueError(
            "logging_config() writes to one destination: give stream, filename "
            "or handler, not several."
        )
    if handler is not None:
        destination = dict(handler)
    elif filename is not None:
        destination = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": filename,
        }
    else:
        destination = {
            "class": "logging.StreamHandler",
            "stream": stream or "ext://sys.stdout",
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "django_microkit": {
                "()": MicrokitFormatter,
                "renderer": renderer,
                "level": name,
            }
        },
        "handlers": {
            "django_microkit": {**destination, "formatter": "django_microkit"}
        },
        "root": {"handlers": ["django_microkit"], "level": name},
        "loggers": {
            # Replace Django's default handlers (console, mail_admins): every
            # line goes to the root handler.
            "django": {"handlers": [], "level": name, "propagate": True},
            "django.request": {"handlers": [], "level": "ERROR", "propagate": True},
            "django.server": {"handlers": [], "level": "ERROR", "propagate": True},
        },
    }


def configure_logging(
    *,
    renderer: Renderer = "json",
    level: int | str = "INFO",
    stream: str = "ext://sys.stdout",
) -> None:
    """Apply :func:`logging_config` now (for scripts and workers that do not
    go through Django's ``LOGGING`` setting)."""
    logging.config.dictConfig(
        logging_config(renderer=renderer, level=level, stream=stream)
    )


# --------------------------------------------------------------------------
# Lines written on every request or call
# --------------------------------------------------------------------------


def milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds to the microsecond, as ``duration_ms`` fields
    give them (cut, not rounded: ``round(x, 3)`` costs several times more)."""
    return int(seconds * 1_000_000) / 1000


_METHOD_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# The record attribute holding the event log_event finished (see format()).
_FINISHED_EVENT = "microkit_event"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Write ``event`` with ``fields`` to ``logger`` at ``level`` as a structlog
    logger of that name would, with less work: for lines written on every
    request or call. Ask ``logger.isEnabledFor(level)`` first to skip
    gathering fields for nothing.

    While ``structlog.get_config()`` equals what :func:`configure_structlog`
    left (an application's own processors or level, or a test's
    ``capture_logs()``, make it differ, and the event then goes through
    structlog as usual), this does the work of structlog's configured chain
    itself, without a bound logger: structlog's level, ``merge_contextvars``,
    the ``extra`` of ``ProcessorFormatter.wrap_for_formatter``, and a record
    handed to ``logger.handle()``, so that filters, handlers, propagation and
    the record factory see the record structlog would make. The caller it
    names is the function that called this one, found without the standard
    library's walk up the stack. The event also gets the fields
    :class:`MicrokitFormatter`'s processors add from the record, so that the
    formatter only has to serialize it.
    """
    if not logger.isEnabledFor(level):
        return
    installed = _installed
    if installed is None or structlog.get_config() != installed.config:
        structlog.get_logger(logger.name).log(level, event, **fields)
        return
    if level < installed.level:
        return
    method_name = _METHOD_NAMES.get(level) or logging.getLevelName(level).lower()
    fields["event"] = event
    merge_contextvars(logger, method_name, fields)
    _, kwargs = ProcessorFormatter.wrap_for_formatter(logger, method_name, fields)
    extra = {**kwargs["extra"], _FINISHED_EVENT: fields}
    # Not this function's frame in a variable: that would be a reference cycle.
    caller = getattr(inspect.currentframe(), "f_back", None)
    if caller is None:  # pragma: no cover - a Python without stack frames
        fn, lno, func = "(unknown file)", 0, "(unknown function)"
    else:
        code = caller.f_code
        fn, lno, func = code.co_filename, caller.f_lineno, code.co_name
    record = logger.makeRecord(
        logger.name, level, fn, lno, fields, (), None, func, extra
    )
    _record_fields(fields, record)
    logger.handle(record)


# --------------------------------------------------------------------------
# Access line
# --------------------------------------------------------------------------

_access_logger = logging.getLogger(ACCESS_LOGGER)

_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
# Characters a URI path keeps unescaped (those of django.utils.encoding's
# escape_uri_path): anything else is percent-encoded before being logged.
_PATH_SAFE = "/:@&+$,-_.!~*'()"
_SAFE_PATH = re.compile(r"[A-Za-z0-9/:@&+$,\-_.!~*'()]*")
_QUERY_SAFE = "/?:@&=+$,;%!~*'()-_."
_SAFE_ADDRESS = re.compile(r"[0-9A-Fa-f:.]{1,45}")


def _printable(value: str, limit: int = 64) -> str:
    """A received value made safe to log: ASCII, control characters escaped,
    at most ``limit`` characters of it."""
    text = ascii(value[:limit])[1:-1]
    return text + "..." if len(value) > limit else text


class _AccessSettings(NamedTuple):
    enabled: bool
    health_paths: tuple[str, ...]
    query_string: bool
    client_address: bool


@derived
def _access_settings() -> _AccessSettings:
    section = microkit_settings.ACCESS_LOG
    return _AccessSettings(
        enabled=section["ENABLED"],
        health_paths=tuple(section["HEALTH_PATHS"]),
        query_string=section["QUERY_STRING"],
        client_address=section["CLIENT_ADDRESS"],
    )


_View = TypeVar("_View", bound=Callable[..., Any])
_AT_DEBUG = "microkit_access_log_at_debug"


def access_log_at_debug(view: _View) -> _View:
    """Mark ``view`` so that the access lines of the requests it answers are
    logged at DEBUG, as those under ``ACCESS_LOG["HEALTH_PATHS"]`` are.

    For a probe at a path of its own (``/healthz``): a load balancer asks it
    every few seconds, wherever it is mounted. ``probe_route`` marks its views;
    the mark is read from the view the URL resolved to.
    """
    setattr(view, _AT_DEBUG, True)
    return view


def _peer_service(request: HttpRequest) -> str | None:
    """The calling service's name once authentication has run, without ever
    running it (a lazy ``request.user`` is not evaluated)."""
    user = request.__dict__.get("user")
    if isinstance(user, LazyObject):
        user = user._wrapped
        if user is empty:
            return None
    name = getattr(user, "service_name", None)
    return name if isinstance(name, str) else None


def log_access(
    request: HttpRequest,
    response: HttpResponseBase,
    started: float,
    rejected_request_id: str | None = None,
) -> None:
    """Write the access line of ``request``, answered with ``response``.

    ``started`` is the ``time.perf_counter()`` of the request's arrival;
    ``rejected_request_id`` a request ID received and refused, logged escaped
    and cut. :class:`~django_microkit.request_id.RequestIDMiddleware` calls it
    when the response is ready.
    """
    duration_ms = milliseconds(perf_counter() - started)
    settings = _access_settings()
    if not settings.enabled:
        return
    path = request.path
    view = getattr(request.resolver_match, "func", None)
    quiet = path.startswith(settings.health_paths) or getattr(view, _AT_DEBUG, False)
    level = logging.DEBUG if quiet else logging.INFO
    if not _access_logger.isEnabledFor(level):
        return
    method = request.method or ""
    fields: dict[str, Any] = {
        "method": method if method in _METHODS else _printable(method, 16),
        "path": path if _SAFE_PATH.fullmatch(path) else quote(path, _PATH_SAFE),
        "status": response.status_code,
        "duration_ms": duration_ms,
    }
    if settings.query_string:
        query = request.META.get("QUERY_STRING")
        if query:
            fields["query"] = quote(query, _QUERY_SAFE)
    if settings.client_address:
        address = request.META.get("REMOTE_ADDR")
        if address:
            fields["client_address"] = (
                address if _SAFE_ADDRESS.fullmatch(address) else _printable(address)
            )
    peer_service = _peer_service(request)
    if peer_service is not None:
        fields["peer_service"] = peer_service
    if rejected_request_id is not None:
        fields["rejected_request_id"] = _printable(rejected_request_id)
    log_event(_access_logger, level, "request", **fields)


def check_logging(**kwargs: Any) -> list[CheckMessage]:
    """``E025``: every ``HEALTH_PATHS`` entry is a path prefix."""
    paths = microkit_settings.ACCESS_LOG["HEALTH_PATHS"]
    if not isinstance(paths, list | tuple):
        return []  # E003 reports the type.
    return [
        Error(
            f"MICROKIT['ACCESS_LOG']['HEALTH_PATHS'] holds {path!r}, which is not "
            "a path prefix.",
            hint="Give path prefixes starting with '/', e.g. '/health/'.",
            id="django_microkit.E025",
        )
        for path in paths
        if not (isinstance(path, str) and path.startswith("/"))
    ]


def check_logging_deploy(**kwargs: Any) -> list[CheckMessage]:
    """``W023`` (``check --deploy``): ``LOGGING`` writes django-microkit's lines,
    recognised by a :class:`MicrokitFormatter` among its formatters. Without it
    Django's default logging writes plain text with no request ID, and the access
    lines (``INFO``) are lost. A service that sets ``LOGGING_CONFIG = None``
    configures logging itself."""
    if not settings.LOGGING_CONFIG:
        return []
    configured = settings.LOGGING if isinstance(settings.LOGGING, dict) else {}
    formatters = configured.get("formatters")
    if isinstance(formatters, dict) and any(
        isinstance(formatter, dict)
        and is_subclass_path(
            formatter.get("()", formatter.get("class")), f"{__name__}.MicrokitFormatter"
        )
        for formatter in formatters.values()
    ):
        return []
    return [
        Warning(
            "LOGGING does not use django-microkit's log lines: none of its "
            "formatters is django_microkit.logging.MicrokitFormatter.",
            hint="Set LOGGING = django_microkit.logging_config() (and add your "
            "loggers to it): one JSON line per record, each with the request ID "
            "and trace ID, and one access line per request.",
            id="django_microkit.W023",
        )
    ]
