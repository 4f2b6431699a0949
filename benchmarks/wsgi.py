"""WSGI application of one stack for ``benchmarks/http.py``: the stack's
settings come from ``DJANGO_SETTINGS_MODULE``; the in-memory database is
created and filled when the worker loads it."""

from __future__ import annotations

import django
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

django.setup()
call_command("migrate", run_syncdb=True, verbosity=0)

from benchmarks.benchapp.models import Item  # noqa: E402

Item.objects.bulk_create(Item(name=f"item {i}", size=i) for i in range(100))
application = get_wsgi_application()
