"""Runs the W3C Trace Context test suite against this service.

``TRACECONTEXT_SUITE`` is the ``test`` folder of a copy of
https://github.com/w3c/trace-context (it needs aiohttp); ``SPEC_LEVEL`` and
``STRICT_LEVEL`` (2 and 2 unless set) are passed on to it, and so are the
arguments, which name the tests to run::

    TRACECONTEXT_SUITE=../trace-context/test python -m tests.tracecontext.run

The service is served by runserver's threaded WSGI server on a free loopback
port; the suite's harness listens on ``HARNESS_PORT`` (7777 unless set).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading


def main(patterns: list[str]) -> int:
    suite = os.environ.get("TRACECONTEXT_SUITE")
    if not suite or not os.path.isfile(os.path.join(suite, "test.py")):
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.tracecontext.settings")

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/test"
    env = {
        **os.environ,
        "SPEC_LEVEL": os.environ.get("SPEC_LEVEL", "2"),
        "STRICT_LEVEL": os.environ.get("STRICT_LEVEL", "2"),
    }
    try:
        command = [sys.executable, "test.py", endpoint, *patterns]
        return subprocess.run(command, cwd=suite, env=env, check=False).returncode
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
