"""The test settings as a WSGI application for a real gunicorn, with routes of
its own (``tests.gunicorn_urls``) and ``DRAIN["DELAY"]`` from
``MICROKIT_TEST_DRAIN_DELAY``."""

from __future__ import annotations

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.gunicorn_settings"

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from django.core.asgi import get_asgi_application  # noqa: E402

#: The same service under ASGI, for the uvicorn test (tests/test_drain.py).
asgi_application = get_asgi_application()
