"""Settings shared by the example services, read from the environment.

Each service's ``settings.py`` imports these and adds its name, apps and urls.
Defaults are for local development only: SQLite and the local-memory cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

import django_microkit
import django_microkit.logging

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG")
# Development default only; every real deployment sets DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "example-service-development-key-not-secret"
)
ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]"
).split(",")
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files served by the service itself, not from a CDN.
    "drf_spectacular_sidecar",
    "django_microkit",
    # The outbox, inbox and dead-letter tables of the saga's events.
    "django_microkit.events",
]

MIDDLEWARE = [
    # First: every later middleware and view logs with the request ID.
    "django_microkit.request_id.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (Swagger UI) from the app directories, under any server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Errors raised by plain Django views become problem documents too.
    "django_microkit.errors.ProblemMiddleware",
    # X-API-Version on every response, and Deprecation/Sunset for old versions.
    "django_microkit.versioning.VersionHeadersMiddleware",
]

# JSON lines on stdout (readable console lines with DJANGO_DEBUG=1), each with
# request_id, trace_id and the service's name.
LOGGING = django_microkit.logging.logging_config(
    renderer="console" if DEBUG else "json",
    level=os.environ.get("LOG_LEVEL", "INFO"),
)
# CSRF failures answer with a problem document.
CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": ["django.template.context_processors.request"]
        },
    }
]

STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            # Services sharing one Redis database keep their keys apart.
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    **django_microkit.rest_framework_defaults(),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["django_microkit.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}


def database(service: str) -> dict[str, dj_database_url.DBConfig]:
    """The service's database: DATABASE_URL, or a SQLite file of its own."""
    default = f"sqlite:///{BASE_DIR / f'{service}.sqlite3'}"
    config = dj_database_url.parse(os.environ.get("DATABASE_URL", default))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several server workers write to one SQLite file: take the write lock
        # when a transaction begins, and wait for it, rather than failing with
        # "database is locked" when two transactions upgrade at once.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    return {"default": config}


def events(handlers: dict[str, str]) -> dict[str, object]:
    """The service's events: the handler of each type it consumes, and the
    broker both services share: RabbitMQ when EVENTS_BROKER_URL is set
    (``amqp://user:password@host:5672/vhost``), else kombu's filesystem
    transport in one folder of this directory (or EVENTS_FOLDER), which needs
    no server. EVENTS_EXCHANGE_PREFIX and EVENTS_QUEUE rename the exchanges
    and the queue, to keep several stacks apart on one broker."""
    return {
        "HANDLERS": handlers,
        "BROKER_URL": os.environ.get("EVENTS_BROKER_URL", ""),
        "FILESYSTEM_FOLDER": os.environ.get(
            "EVENTS_FOLDER", str(BASE_DIR / "events-broker")
        ),
        "EXCHANGE_PREFIX": os.environ.get("EVENTS_EXCHANGE_PREFIX", "events."),
        "QUEUE": os.environ.get("EVENTS_QUEUE", ""),
    }


def microkit(service: str, handlers: dict[str, str]) -> dict[str, object]:
    """The service's MICROKIT settings: its name, readiness checks, events
    (``handlers``: the handler of each event type it consumes), and Sentry when
    SENTRY_DSN is set."""
    return {
        "SERVICE_NAME": service,
        "SERVICE_VERSION": "1.0.0",
        "SENTRY": {
            "DSN": os.environ.get("SENTRY_DSN", ""),
            "ENVIRONMENT": os.environ.get("SENTRY_ENVIRONMENT", "development"),
        },
        # Ready when its database, its cache and the event broker answer, and
        # no event has waited too long in the outbox.
        "HEALTH": {
            "READINESS_CHECKS": [
                "database:default",
                "cache:default",
                "django_microkit.events.health.broker",
                "django_microkit.events.health.outbox",
            ]
        },
        # Seconds readiness fails before a stop, under django_microkit.gunicorn.
        "DRAIN": {"DELAY": float(os.environ.get("DRAIN_DELAY", "5"))},
        # OpenTelemetry spans, exported where OTEL_EXPORTER_OTLP_ENDPOINT says
        # (needs the otel extra).
        "TRACING": {"ENABLED": env_bool("TRACING_ENABLED")},
        "EVENTS": events(handlers),
    }


def spectacular(service: str, description: str) -> dict[str, object]:
    return {
        "TITLE": f"{service} service",
        "DESCRIPTION": description,
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }


# Service-to-service authentication: orders signs its calls to catalog with an
# Ed25519 key. Deployments generate their own pair with
# `manage.py microkit_service_key --service orders` and set ORDERS_KEY_ID,
# ORDERS_SIGNING_KEY (on orders) and ORDERS_PUBLIC_KEY (on catalog).
# The pair below is for local development ONLY: it is published in this
# repository, so anyone can sign as orders with it. Never deploy it.
ORDERS_KEY_ID = os.environ.get("ORDERS_KEY_ID", "orders-development")
DEV_ORDERS_SIGNING_KEY = """\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOBGyvbAFwy/YyVuoHMg+9YkNHYcvTqCliBi1kj3QaA+
-----END PRIVATE KEY-----
"""
DEV_ORDERS_PUBLIC_KEY = """\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA7az7xU3cvF8RwL0LOGY+FkaIXslE7qZfnfimUUYE8i4=
-----END PUBLIC KEY-----
"""


def key_source(variable: str, development_default: str) -> dict[str, str]:
    """Read a key from ``variable``, or use the development-only default when
    the variable is not set."""
    if os.environ.get(variable):
        return {"env": variable}
    return {"value": development_default}


# Events: catalog signs the events it publishes with an Ed25519 key of its own,
# and each service lists the other among its peers, so it accepts events signed
# by that service's key only. Deployments generate a pair with
# `manage.py microkit_service_key --service catalog` and set CATALOG_KEY_ID,
# CATALOG_SIGNING_KEY (on catalog) and CATALOG_PUBLIC_KEY (on orders). As for
# orders' pair above: development ONLY, never deploy it.
CATALOG_KEY_ID = os.environ.get("CATALOG_KEY_ID", "catalog-development")
DEV_CATALOG_SIGNING_KEY = """\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJmKG5JTsAuL6BwkNSz+ZfWOHNeuRUzqRonX2rCRdeQZ
-----END PRIVATE KEY-----
"""
DEV_CATALOG_PUBLIC_KEY = """\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAnGYPN65NHQbbeldSlVtpB46hefXpilQLozgFW9haIYA=
-----END PUBLIC KEY-----
"""
