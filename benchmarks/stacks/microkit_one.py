"""The microkit stack with the one middleware, ``MicrokitMiddleware``, in place
of the three, and neither error views nor ``CSRF_FAILURE_VIEW``: what the
quickstart wires. It should cost no more than the three."""

from __future__ import annotations

from benchmarks.stacks.microkit import *  # noqa: F403

ROOT_URLCONF = "benchmarks.stacks.microkit_one_urls"
MIDDLEWARE = ["django_microkit.middleware.MicrokitMiddleware"]
CSRF_FAILURE_VIEW = "django.views.csrf.csrf_failure"
