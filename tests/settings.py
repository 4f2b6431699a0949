"""Minimal settings for the test suite.

SQLite and the local-memory cache by default, so ``pytest`` runs anywhere; the
real PostgreSQL and Redis when ``DATABASE_URL`` / ``REDIS_URL`` are set.
"""

from __future__ import annotations

import os
import uuid

import dj_database_url

import django_microkit

SECRET_KEY = "tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "drf_spectacular",
    "django_microkit",
    "django_microkit.events",
    "tests.testapp",
]

MIDDLEWARE: list[str] = [
    "django_microkit.request_id.RequestIDMiddleware",
    "django_microkit.errors.ProblemMiddleware",
    "django_microkit.versioning.VersionHeadersMiddleware",
]

CSRF_FAILURE_VIEW = "django_microkit.errors.csrf_failure"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "sqlite://:memory:"), conn_max_age=0
    )
}

if os.environ.get("REDIS_URL"):
    # A key prefix of this run's own, inherited by the subprocesses it starts:
    # runs sharing one Redis database never see or clear each other's keys.
    os.environ.setdefault(
        "MICROKIT_TEST_CACHE_PREFIX", f"microkit-tests-{uuid.uuid4().hex[:12]}"
    )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ["MICROKIT_TEST_CACHE_PREFIX"],
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
    }
]

MICROKIT = {"SERVICE_NAME": "tests", "SERVICE_VERSION": "1.0.0"}

REST_FRAMEWORK = {**django_microkit.rest_framework_defaults()}
