"""The one endpoint the W3C Trace Context test suite calls.

The harness POSTs a JSON array of ``{"url": ..., "arguments": ...}``; for each
the service POSTs ``arguments`` to ``url`` through a :class:`ServiceClient`,
which carries the ``traceparent`` and ``tracestate`` that
:class:`~django_microkit.request_id.RequestIDMiddleware` read from the harness.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_microkit.client import ServiceClient

harness = ServiceClient("harness")


@csrf_exempt
def test(request: HttpRequest) -> JsonResponse:
    for action in json.loads(request.body or b"[]"):
        harness.post(action["url"], json=action.get("arguments", []))
    return JsonResponse({})


urlpatterns = [path("test", test)]
