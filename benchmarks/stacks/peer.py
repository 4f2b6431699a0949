"""The stack a team assembles today for the same features: drf-standardized-errors,
django-guid, django-structlog (JSON through stdlib logging), django-health-check and
DRF's AcceptHeaderVersioning, configured as their documentation shows."""

from __future__ import annotations

import os

import structlog

from benchmarks.stacks.common import *  # noqa: F403
from benchmarks.stacks.common import INSTALLED_APPS, REST_FRAMEWORK

ROOT_URLCONF = "benchmarks.stacks.peer_urls"
INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django_guid",
    "django_structlog",
    "drf_standardized_errors",
    "health_check",
]
MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "django_structlog.middlewares.RequestMiddleware",
]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.AcceptHeaderVersioning",
    "DEFAULT_VERSION": "1",
    "ALLOWED_VERSIONS": ["1", "2"],
}
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "RETURN_HEADER": True}

LOG_FILE = os.environ.get("BENCH_LOG_FILE", os.devnull)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": structlog.processors.JSONRenderer(),
        }
    },
    "handlers": {
        "file": {
            "class": "logging.FileHandler",
            "filename": LOG_FILE,
            "formatter": "json",
        }
    },
    "root": {"handlers": ["file"], "level": "INFO"},
}
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)
