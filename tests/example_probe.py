"""Run inside an example service (``python example_probe.py <service>``): serve
one request through the service's own settings and print what was logged and,
for orders, what a call to the catalog carried. Used by test_example_service."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

SERVICE = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example_service"))
os.environ["DJANGO_SETTINGS_MODULE"] = f"{SERVICE}.settings"

import django  # noqa: E402

django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402

from django_microkit.request_id import RequestIDMiddleware  # noqa: E402

response = Client(HTTP_HOST="localhost").get(
    "/api/no-such-thing/", headers={"X-Request-ID": f"{SERVICE}-probe"}
)
print(json.dumps({"probe": "response", "header": response["X-Request-ID"]}))

if SERVICE == "orders":
    received: dict[str, str] = {}

    class FakeCatalog(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.update(self.headers.items())
            body = b'{"id": 1, "name": "Pen", "price": "2.50"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), FakeCatalog)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    from orders import catalog

    def view(request: HttpRequest) -> HttpResponse:
        catalog.get_product(1)
        return HttpResponse()

    from django.conf import settings

    services = {"catalog": {"BASE_URL": f"http://127.0.0.1:{server.server_port}"}}
    with override_settings(MICROKIT={**settings.MICROKIT, "SERVICES": services}):
        RequestIDMiddleware(view)(
            RequestFactory().get("/", HTTP_X_REQUEST_ID="orders-calls-catalog")
        )
    server.shutdown()
    print(json.dumps({"probe": "catalog call", "headers": received}))
